// slipway-fetch: the runtime agent's restore of an artifact Slipway packed, at the pace of
// `curl | tar`. It downloads one object, checks each chunk against the sha256 the packer recorded
// for it, and hands only checked chunks to `zstd -dc | tar -x` (or gzip's), which write them.
//
// The agent does the same in node when this helper is absent; this exists because node's own
// HTTP, hashing and pipe writes cost as much CPU again as the download, on machines where zstd
// and tar already keep the cores busy (bench/restore).
//
//	slipway-fetch --compression zstd|gzip --dir DIR < request.json
//
// The request (JSON on stdin, never argv, which other users can read): the object's presigned
// URL, the chunk size and the chunks' sha256s, and how long the download may move no byte. Exit
// status: 0 extracted; 2 bad usage or request; 3 a chunk differs from its record, or the object
// is longer or shorter than its chunks (nothing past the last good chunk reached tar); 4 the
// download failed; 5 the object does not exist; 6 tar failed; 7 the store could not be reached
// or was busy, before any byte reached tar (worth another try). On failure the last line on
// stderr says why, and the caller discards DIR.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

const (
	exitUsage    = 2
	exitVerify   = 3
	exitDownload = 4
	exitNotFound = 5
	exitTar      = 6
	exitBusy     = 7

	// fcntl's F_SETPIPE_SZ (Linux), which package syscall does not name.
	fSetPipeSize = 1031
)

type request struct {
	URL           string   `json:"url"`
	ChunkBytes    int      `json:"chunkBytes"`
	ChunkSha256s  []string `json:"chunkSha256s"`
	IdleTimeoutMs int      `json:"idleTimeoutMs"`
}

type failure struct {
	code    int
	message string
}

func (f *failure) Error() string { return f.message }

func fail(code int, format string, args ...any) *failure {
	return &failure{code, fmt.Sprintf(format, args...)}
}

func main() {
	compression := flag.String("compression", "", "zstd or gzip")
	dir := flag.String("dir", "", "the directory to extract into")
	flag.Parse()
	if err := run(*compression, *dir, os.Stdin); err != nil {
		fmt.Fprintf(os.Stderr, "slipway-fetch: %s\n", err.message)
		os.Exit(err.code)
	}
}

func readRequest(in io.Reader) (*request, *failure) {
	var req request
	decoder := json.NewDecoder(io.LimitReader(in, 16<<20))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&req); err != nil {
		return nil, fail(exitUsage, "the request on stdin is not valid JSON: %v", err)
	}
	if !strings.HasPrefix(req.URL, "http://") && !strings.HasPrefix(req.URL, "https://") {
		return nil, fail(exitUsage, "the request's url must be http or https")
	}
	if req.ChunkBytes <= 0 || req.ChunkBytes > 256<<20 || len(req.ChunkSha256s) == 0 || req.IdleTimeoutMs <= 0 {
		return nil, fail(exitUsage, "the request needs chunkBytes (1 to 256 MiB), chunkSha256s and idleTimeoutMs")
	}
	for _, digest := range req.ChunkSha256s {
		if decoded, err := hex.DecodeString(digest); err != nil || len(decoded) != sha256.Size {
			return nil, fail(exitUsage, "chunk sha256 %q is not 64 hex digits", digest)
		}
	}
	return &req, nil
}

func run(compression, dir string, in io.Reader) *failure {
	req, bad := readRequest(in)
	if bad != nil {
		return bad
	}
	x, bad := startExtraction(compression, dir)
	if bad != nil {
		return bad
	}
	if fetchErr := fetch(req, x.input); fetchErr != nil {
		// The pipeline stopped reading: its own reason says more than the broken pipe.
		if fetchErr.code == exitTar {
			return x.finish()
		}
		x.kill()
		return fetchErr
	}
	return x.finish()
}
