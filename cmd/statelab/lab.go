package main

import (
	"context"
	"errors"
)

// runLab is not built yet; its issue replaces this file.
func runLab(ctx context.Context, m *Main, args []string) error {
	return errors.New("lab: not implemented yet")
}
