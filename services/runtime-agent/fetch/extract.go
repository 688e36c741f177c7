package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// extraction is `zstd -dc | tar -x` (or gzip's), fed through input. The decompressor runs as a
// process of its own and not as `tar --zstd -f -`: reading an archive from a pipe, GNU tar puts
// one more process between the pipe and its decompressor, copying 10 KiB records, which cost a
// tenth more time than the pipeline it is measured against (bench/restore).
type extraction struct {
	input        *os.File
	decompressor *exec.Cmd
	tar          *exec.Cmd
	stderr       map[*exec.Cmd]*strings.Builder
}

// startExtraction starts both processes, writing into dir with the modes as packed: the packer
// sealed them, so there is no chmod per file, and no umask in the way.
func startExtraction(compression, dir string) (*extraction, *failure) {
	// The compression's name is its decompressor's.
	if (compression != "zstd" && compression != "gzip") || dir == "" {
		return nil, fail(exitUsage, "usage: slipway-fetch --compression zstd|gzip --dir DIR < request.json")
	}
	syscall.Umask(0)
	tarArgs := []string{"-x", "-f", "-", "--no-same-owner", "--no-same-permissions", "-C", dir}
	if compression == "gzip" {
		// node tar packs gzip artifacts, and need not keep each directory's entries together: a
		// directory's time set on leaving it would be changed by an entry of it arriving later.
		tarArgs = append(tarArgs, "--delay-directory-restore")
	}
	x := &extraction{
		decompressor: exec.Command(compression, "-dc"),
		tar:          exec.Command("tar", tarArgs...),
		stderr:       map[*exec.Cmd]*strings.Builder{},
	}
	compressed, input, err := os.Pipe()
	if err != nil {
		return nil, fail(exitTar, "pipe: %v", err)
	}
	// A pipe of 1 MiB, not 64 KiB: a sixteenth of the wake-ups between this process and the
	// decompressor. Only a hint: an unprivileged process past /proc/sys/fs/pipe-max-size keeps the default.
	syscall.Syscall(syscall.SYS_FCNTL, input.Fd(), fSetPipeSize, 1<<20)
	archive, decompressed, err := os.Pipe()
	if err != nil {
		return nil, fail(exitTar, "pipe: %v", err)
	}
	x.input = input
	x.decompressor.Stdin, x.decompressor.Stdout = compressed, decompressed
	x.tar.Stdin = archive
	for _, cmd := range []*exec.Cmd{x.decompressor, x.tar} {
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		x.stderr[cmd] = &strings.Builder{}
		cmd.Stderr = &limitedWriter{w: x.stderr[cmd], left: 64 << 10}
		// Both go when this process goes, killed or not: its caller discards what they wrote. In
		// one process group, the decompressor's, which a failure here kills whole.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		if cmd == x.tar {
			cmd.SysProcAttr.Pgid = x.decompressor.Process.Pid
		}
		if err := cmd.Start(); err != nil {
			x.kill()
			return nil, fail(exitTar, "%s could not start: %v", cmd.Args[0], err)
		}
	}
	// Only the children hold these ends now: each sees the end of its input once its writer is gone.
	for _, end := range []*os.File{compressed, decompressed, archive} {
		end.Close()
	}
	return x, nil
}

// finish closes the input and waits for both processes; a failure says why in the words of the
// one that failed first. The decompressor writing into a pipe tar had closed is no failure: GNU
// tar stops reading at the archive's end-of-archive blocks, and treats its own decompressor's
// broken pipe (`tar --zstd`) the same way.
func (x *extraction) finish() *failure {
	x.input.Close()
	decompressErr, tarErr := x.decompressor.Wait(), x.tar.Wait()
	reason := func(cmd *exec.Cmd, err error) string {
		if said := strings.SplitN(strings.TrimSpace(x.stderr[cmd].String()), "\n", 2)[0]; said != "" {
			return said
		}
		return fmt.Sprintf("%s: %v", cmd.Args[0], err)
	}
	switch {
	case decompressErr != nil && !x.wroteIntoClosedPipe(decompressErr):
		return fail(exitTar, "tar could not read the archive: %s", reason(x.decompressor, decompressErr))
	case tarErr != nil:
		return fail(exitTar, "tar could not read the archive: %s", reason(x.tar, tarErr))
	}
	return nil
}

// wroteIntoClosedPipe: the decompressor failed only because tar had stopped reading.
func (x *extraction) wroteIntoClosedPipe(err error) bool {
	if exit, ok := err.(*exec.ExitError); ok {
		if status, ok := exit.Sys().(syscall.WaitStatus); ok && status.Signaled() && status.Signal() == syscall.SIGPIPE {
			return true
		}
	}
	return strings.Contains(x.stderr[x.decompressor].String(), "Broken pipe")
}

// kill stops both at once and reaps them.
func (x *extraction) kill() {
	if x.decompressor.Process != nil {
		syscall.Kill(-x.decompressor.Process.Pid, syscall.SIGKILL)
	}
	if x.input != nil {
		x.input.Close()
	}
	for _, cmd := range []*exec.Cmd{x.decompressor, x.tar} {
		if cmd.Process != nil {
			cmd.Wait()
		}
	}
}

type limitedWriter struct {
	w    io.Writer
	left int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.left > 0 {
		take := p
		if len(take) > l.left {
			take = take[:l.left]
		}
		l.left -= len(take)
		l.w.Write(take)
	}
	return len(p), nil
}
