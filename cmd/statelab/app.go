package main

import (
	"context"
	"errors"
)

// runApp is not built yet; its issue replaces this file.
func runApp(ctx context.Context, m *Main, args []string) error {
	return errors.New("app: not implemented yet")
}
