package main

import (
	"context"
	"errors"
)

// runPlay is not built yet; its issue replaces this file.
func runPlay(ctx context.Context, m *Main, args []string) error {
	return errors.New("play: not implemented yet")
}
