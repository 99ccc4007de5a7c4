package image

import "syscall"

var errConnRefused = syscall.ECONNREFUSED
