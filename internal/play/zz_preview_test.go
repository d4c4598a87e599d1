package play

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"
)

func TestPreviewLocal(t *testing.T) {
	if os.Getenv("PLAY_PREVIEW") == "" {
		t.Skip()
	}
	st := &fakeStarter{t: t}
	s, _ := New(Config{Strategy: "sticky", Start: st.start, Logger: slog.Default(), PollInterval: 300 * time.Millisecond,
		Shoppers: func(context.Context, string, float64) (Shoppers, error) { return &fakeShoppers{}, nil }})
	s.Start(context.Background())
	go http.ListenAndServe("127.0.0.1:18090", s.Handler())
	time.Sleep(60 * time.Second)
}
