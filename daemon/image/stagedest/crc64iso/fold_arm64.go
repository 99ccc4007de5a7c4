package crc64iso

import "golang.org/x/sys/cpu"

var canFold = cpu.ARM64.HasPMULL
