package gethproc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Command describes a child process to start.
type Command struct {
	Bin  string
	Args []string
	Dir  string   // working directory; "" inherits
	Env  []string // extra environment variables (KEY=VALUE) on top of os.Environ()
	// Drop names prefixes of inherited environment variables the child must not see
	// (Lodestar reads every LODESTAR_* variable as a flag).
	Drop    []string
	LogPath string // stdout and stderr are appended here
	// OwnGroup puts the child in its own process group, so that a Ctrl-C at the terminal
	// reaches only the parent, which then stops the child itself.
	OwnGroup bool
}

// Process is a started child process whose exit is awaited by one goroutine.
type Process struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // valid after exited is closed
}

// Start runs the command. On Linux the child is killed if the parent dies.
func (c Command) Start() (*Process, error) {
	logFile, err := os.OpenFile(c.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.Bin, c.Args...)
	cmd.Dir = c.Dir
	if len(c.Env) > 0 || len(c.Drop) > 0 {
		for _, kv := range os.Environ() {
			if !hasAnyPrefix(kv, c.Drop) {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		cmd.Env = append(cmd.Env, c.Env...)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childProcAttr(c.OwnGroup)
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(c.Bin), err)
	}
	p := &Process{cmd: cmd, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	return p, nil
}

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// ExitedNow reports whether the process has exited.
func (p *Process) ExitedNow() bool {
	if p == nil {
		return true
	}
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// ExitErr is the process's exit error once it has exited (nil while running or on exit 0).
func (p *Process) ExitErr() error {
	if p == nil || !p.ExitedNow() {
		return nil
	}
	return p.err
}

// Signal sends sig to the process (by PID). A process that already exited is not an error.
func (p *Process) Signal(sig syscall.Signal) error {
	if p == nil || p.ExitedNow() {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

// Stop sends SIGTERM (by PID) and waits; after timeout it sends SIGKILL and reports that it
// had to.
func (p *Process) Stop(timeout time.Duration) error {
	if p == nil || p.ExitedNow() {
		return nil
	}
	_ = p.Signal(syscall.SIGCONT) // a stopped (SIGSTOP) process would never see SIGTERM
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.exited:
		return nil
	case <-t.C:
	}
	if err := p.Kill(); err != nil {
		return err
	}
	return fmt.Errorf("pid %d did not exit %v after SIGTERM; killed", p.PID(), timeout)
}

// Kill sends SIGKILL (by PID) and waits for the exit.
func (p *Process) Kill() error {
	if p == nil || p.ExitedNow() {
		return nil
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-p.exited
	return nil
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
