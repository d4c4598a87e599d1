package httpapi

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"github.com/statelab/statelab/balancer"
)

// InstanceHeader is the header in which a replica names its process
// instance on /healthz and /readyz: the balancer treats a new value
// between two passing checks as a restart and ramps the replica up under
// its slow start, however fast the restart was.
const InstanceHeader = balancer.InstanceHeader

// instance is this process's identity: its start time and 48 random bits,
// so two processes started in the same millisecond differ too.
var instance = newInstance()

func newInstance() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return strconv.FormatInt(time.Now().UnixMilli(), 36) + "-" + hex.EncodeToString(b[:])
}

// Instance returns this process's instance identity: the same for the life
// of the process, different in the next one.
func Instance() string { return instance }

// SetInstance puts the process's instance identity in h (InstanceHeader).
func SetInstance(h http.Header) { h.Set(InstanceHeader, instance) }
