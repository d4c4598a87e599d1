// Package machine answers two questions about the machine statelab's
// clusters and tests run on: which loopback port a child process can be
// told to bind (FreePort), and how much busier than its CPUs the machine
// is (LoadFactor), for deadlines that must hold on a loaded machine
// without hiding a process that hangs. It owns no state beyond the ports
// it handed out recently.
package machine
