package main

import (
	"context"
	"errors"
)

// runDemo is not built yet; its issue replaces this file.
func runDemo(ctx context.Context, m *Main, args []string) error {
	return errors.New("demo: not implemented yet")
}
