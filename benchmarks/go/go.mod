module pygoro.dev/benchmarks

go 1.22
