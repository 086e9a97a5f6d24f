//go:build !linux

package supersocket

func loopWriterParked[T any](s *Session[T]) bool { return false }

func sameLoop[T any](srv *Server[T], a, b *client) bool { return true }
