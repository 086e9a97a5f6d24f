package main

import (
	"context"
	"io"
	"os"

	"github.com/supersocket-go/supersocket/internal/loadgen"
)

// bench is the "bench" command, the load generator of internal/loadgen; results go to
// standard output.
func bench(ctx context.Context, args []string, stderr io.Writer) int {
	return loadgen.Main(ctx, args, os.Stdout, stderr)
}
