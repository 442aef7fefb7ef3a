package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of utime and stime in /proc/<pid>/stat: USER_HZ, 100 on Linux.
const userHZ = 100

// ProcSample is what /proc says about a process at one moment.
type ProcSample struct {
	CPU     time.Duration // user + system time so far (10 ms resolution)
	PeakRSS int64         // VmHWM in bytes: the largest resident set since start or ResetPeak
	MinFlt  int64         // minor page faults so far (first touches of fresh memory)
}

// ReadProc reads the CPU time and peak resident set of pid.
func ReadProc(pid int) (ProcSample, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ProcSample{}, fmt.Errorf("cpu of %d: %w", pid, err)
	}
	cpu, flt, err := parseStat(b)
	if err != nil {
		return ProcSample{}, err
	}
	hwm, err := readHWM(pid)
	if err != nil {
		return ProcSample{}, err
	}
	return ProcSample{CPU: cpu, PeakRSS: hwm, MinFlt: flt}, nil
}

// ReadProcs sums ReadProc over pids (a master process and its workers).
func ReadProcs(pids []int) (ProcSample, error) {
	var sum ProcSample
	for _, pid := range pids {
		s, err := ReadProc(pid)
		if err != nil {
			return sum, err
		}
		sum.CPU += s.CPU
		sum.PeakRSS += s.PeakRSS
		sum.MinFlt += s.MinFlt
	}
	return sum, nil
}

// ResetPeak resets VmHWM of pid to its current resident set (clear_refs "5", Linux ≥ 4.0).
func ResetPeak(pid int) error {
	return os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0)
}

// Children lists the direct children of pid (from /proc/<pid>/task/*/children).
func Children(pid int) ([]int, error) {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return nil, fmt.Errorf("children of %d: %w", pid, err)
	}
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + t.Name() + "/children")
		if err != nil {
			continue // the task ended
		}
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// parseStat reads fields 10 (minflt), 14 (utime) and 15 (stime) of a /proc/<pid>/stat
// line. The command name (field 2) may contain spaces and parentheses, so fields are counted
// after the last ')'.
func parseStat(b []byte) (cpu time.Duration, minflt int64, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// After ')': state is field 3, at index 0; field n is at index n-3.
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("stat: %d fields", len(f))
	}
	var v [3]int64
	for j, s := range []string{f[10-3], f[14-3], f[15-3]} {
		if v[j], err = strconv.ParseInt(s, 10, 64); err != nil {
			return 0, 0, fmt.Errorf("stat: %w", err)
		}
	}
	return time.Duration(v[1]+v[2]) * time.Second / userHZ, v[0], nil
}

// readHWM returns VmHWM of pid in bytes.
func readHWM(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("status of %d: %w", pid, err)
	}
	return parseHWM(b)
}

func parseHWM(b []byte) (int64, error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("status: VmHWM %q", rest)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("status: %w", err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("status: no VmHWM")
}
