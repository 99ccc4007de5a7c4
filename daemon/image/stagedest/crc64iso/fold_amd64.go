package crc64iso

import "golang.org/x/sys/cpu"

var canFold = cpu.X86.HasPCLMULQDQ && cpu.X86.HasSSE41
