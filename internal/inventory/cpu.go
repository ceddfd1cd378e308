package inventory

import (
	"errors"
	"math"
	"strconv"
	"strings"

	"bareflow/contract"
)

// cpuInfo is what parseCPUInfo takes from /proc/cpuinfo.
type cpuInfo struct {
	threads int
	model   string
	vendor  string
	mhz     float64
	// physIDs are the distinct "physical id"s: the sockets.
	physIDs map[string]bool
	// cores are the distinct (physical id, core id) pairs.
	cores map[[2]string]bool
	// coresPerSocket is the first "cpu cores" value.
	coresPerSocket int
}

// parseCPUInfo reads /proc/cpuinfo: one block of "key : value" lines per
// logical CPU, each opened by a "processor" line.
func parseCPUInfo(b []byte) (cpuInfo, error) {
	ci := cpuInfo{physIDs: map[string]bool{}, cores: map[[2]string]bool{}}
	var phys, core string
	flush := func() {
		if phys != "" && core != "" && len(ci.cores) < maxCoreIDs {
			ci.cores[[2]string{phys, core}] = true
		}
		phys, core = "", ""
	}
	lines(b, func(l string) bool {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			return true
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "processor":
			flush()
			if ci.threads < math.MaxInt32 {
				ci.threads++
			}
		case "physical id":
			phys = clean(v)
			if phys != "" && len(ci.physIDs) < maxCoreIDs {
				ci.physIDs[phys] = true
			}
		case "core id":
			core = clean(v)
		case "model name":
			if ci.model == "" {
				ci.model = value(v)
			}
		case "vendor_id":
			if ci.vendor == "" {
				ci.vendor = value(v)
			}
		case "cpu MHz":
			if ci.mhz == 0 {
				if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 && f < 1e6 {
					ci.mhz = math.Round(f*1000) / 1000
				}
			}
		case "cpu cores":
			if n, ok := atoi(v); ok && ci.coresPerSocket == 0 && n < 1<<16 {
				ci.coresPerSocket = int(n)
			}
		}
		return true
	})
	flush()
	if ci.threads == 0 {
		return ci, errors.New("no processor entries")
	}
	return ci, nil
}

// buildCPU sums up the processors. Sockets are the populated SMBIOS
// processor entries, else the distinct physical ids of /proc/cpuinfo, else
// one when the kernel lists any CPU. Cores are the distinct (physical id,
// core id) pairs, else the SMBIOS core counts of the populated sockets, else
// "cpu cores" times the sockets. Threads are the logical CPUs the kernel
// lists.
func buildCPU(dmi dmiInfo, ci cpuInfo, arch string) contract.CPUInfo {
	out := contract.CPUInfo{
		Model:   ci.model,
		Vendor:  ci.vendor,
		Arch:    arch,
		Threads: ci.threads,
		MHz:     ci.mhz,
	}
	populated, dmiCores := 0, 0
	var dmiModel, dmiVendor string
	for _, p := range dmi.processors {
		if !p.populated {
			continue
		}
		populated++
		dmiCores += p.cores
		if dmiModel == "" {
			dmiModel, dmiVendor = p.version, p.manufacturer
		}
	}
	switch {
	case populated > 0:
		out.Sockets = populated
	case len(ci.physIDs) > 0:
		out.Sockets = len(ci.physIDs)
	case ci.threads > 0:
		out.Sockets = 1
	}
	switch {
	case len(ci.cores) > 0:
		out.Cores = len(ci.cores)
	case dmiCores > 0:
		out.Cores = dmiCores
	case ci.coresPerSocket > 0:
		out.Cores = ci.coresPerSocket * max(out.Sockets, 1)
	}
	if out.Model == "" {
		out.Model = dmiModel
	}
	if out.Vendor == "" {
		out.Vendor = dmiVendor
	}
	return out
}

// memInfo is what parseMeminfo takes from /proc/meminfo.
type memInfo struct {
	totalBytes int64
}

// parseMeminfo reads MemTotal from /proc/meminfo ("MemTotal: 395915316 kB").
func parseMeminfo(b []byte) (memInfo, error) {
	var mi memInfo
	found := false
	lines(b, func(l string) bool {
		v, ok := strings.CutPrefix(l, "MemTotal:")
		if !ok {
			return true
		}
		f := strings.Fields(v)
		if len(f) == 2 && f[1] == "kB" {
			if n, ok := atoi(f[0]); ok && n < 1<<50 {
				mi.totalBytes = n << 10
				found = true
			}
		}
		return false
	})
	if !found {
		return mi, errors.New("no MemTotal line")
	}
	return mi, nil
}

// buildMemory is the kernel's memory and the populated DIMMs; the total is
// the sum of the DIMMs, or the kernel's memory when SMBIOS lists none.
func buildMemory(dmi dmiInfo, mi memInfo) contract.MemoryInfo {
	out := contract.MemoryInfo{UsableBytes: mi.totalBytes, DIMMs: dmi.dimms}
	for _, d := range dmi.dimms {
		out.TotalBytes += d.SizeBytes
	}
	if out.TotalBytes == 0 {
		out.TotalBytes = mi.totalBytes
	}
	return out
}
