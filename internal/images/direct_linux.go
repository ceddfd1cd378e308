package images

import "syscall"

// oDirect is the open flag for I/O that bypasses the page cache.
const oDirect = syscall.O_DIRECT
