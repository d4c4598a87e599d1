package main

import (
	"context"
	"errors"
)

// runLB is not built yet; its issue replaces this file.
func runLB(ctx context.Context, m *Main, args []string) error {
	return errors.New("lb: not implemented yet")
}
