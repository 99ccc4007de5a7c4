package errdefs

import (
	"errors"
	"fmt"
	"testing"
)

func TestNewIsBothSentinelAndKind(t *testing.T) {
	errGone := New(ErrNotFound, "pod sandbox not found")
	err := fmt.Errorf("pod %q: %w", "p", errGone)
	if !errors.Is(err, errGone) || !errors.Is(err, ErrNotFound) || errors.Is(err, ErrAlreadyExists) {
		t.Fatalf("errors.Is through wrapping is off for %v", err)
	}
	if err.Error() != `pod "p": pod sandbox not found` {
		t.Fatalf("message %q", err)
	}
	if KindOf(err) != ErrNotFound {
		t.Fatalf("KindOf = %v", KindOf(err))
	}
}

func TestInvalid(t *testing.T) {
	err := fmt.Errorf("creating: %w", Invalid("config.mounts[1].host_path", "%q is relative", "a"))
	var ie *InvalidArgumentError
	if !errors.As(err, &ie) || ie.Field != "config.mounts[1].host_path" {
		t.Fatalf("errors.As: %v", err)
	}
	if !errors.Is(err, ErrInvalidArgument) || KindOf(err) != ErrInvalidArgument {
		t.Fatalf("kind of %v", err)
	}
	if err.Error() != `creating: invalid config.mounts[1].host_path: "a" is relative` {
		t.Fatalf("message %q", err)
	}
}

func TestWithKind(t *testing.T) {
	cause := errors.New("socket closed")
	err := WithKind(ErrUnavailable, cause)
	if err.Error() != "socket closed" || !errors.Is(err, cause) || KindOf(err) != ErrUnavailable {
		t.Fatalf("WithKind: %v kind %v", err, KindOf(err))
	}
	if WithKind(ErrUnavailable, nil) != nil {
		t.Fatal("WithKind(nil) must be nil")
	}
}

func TestKindOfOutermostWins(t *testing.T) {
	inner := New(ErrNotFound, "pod not found")
	outer := New(ErrFailedPrecondition, "container cannot start")
	for _, tc := range []struct {
		err  error
		want error
	}{
		{nil, nil},
		{errors.New("plain"), nil},
		{fmt.Errorf("%w: %w", outer, inner), ErrFailedPrecondition},
		{fmt.Errorf("%w: %w", inner, outer), ErrNotFound},
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", inner)), ErrNotFound},
		{errors.Join(errors.New("no kind"), inner), ErrNotFound},
		{WithKind(ErrUnavailable, inner), ErrUnavailable},
	} {
		if got := KindOf(tc.err); got != tc.want {
			t.Errorf("KindOf(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
