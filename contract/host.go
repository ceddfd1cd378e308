package contract

import "time"

// Workflow types of hypervisor hosts.
const (
	WorkflowConvertToHost = "bareflow.ConvertToHost"
	WorkflowUndoHost      = "bareflow.UndoHost"
)

// Operation kinds of hypervisor hosts.
const (
	OperationConvertHost OperationKind = "convert_host"
	OperationUndoHost    OperationKind = "undo_host"
)

// Error codes of hypervisor hosts.
const (
	// ErrHostAgentNotUp: the converted machine's OS came up but its host
	// agent did not answer in time.
	ErrHostAgentNotUp = "HostAgentNotUp"
	// ErrHostHasGuests: the host runs guests; it cannot be turned back.
	ErrHostHasGuests = "HostHasGuests"
	// ErrNotAHost: the machine is not a hypervisor host.
	ErrNotAHost = "NotAHost"
)

// Defaults of a host conversion.
const (
	// DefaultHostRootSize is the root partition of a host; the rest of the
	// disk is its workspace. On a disk too small for it the root gets half
	// the disk.
	DefaultHostRootSize = 50 << 30
	// MinWorkspaceSize is the smallest workspace a conversion accepts.
	MinWorkspaceSize = 64 << 20
	// DefaultAgentPort is where the host agent listens.
	DefaultAgentPort = 8600
	// DefaultWorkspacePath is where the workspace is mounted.
	DefaultWorkspacePath = "/var/lib/libvirt/images"
	// DefaultWorkspaceFS is the workspace's filesystem.
	DefaultWorkspaceFS = "xfs"
	// DefaultAgentTimeout bounds the wait for the host agent once the OS
	// answers.
	DefaultAgentTimeout = 10 * time.Minute
	// WorkspaceLabel is the workspace partition's label.
	WorkspaceLabel = "workspace"
)

// Files a conversion writes into the installed OS.
const (
	// HostConfPath is the host agent's configuration, KEY=VALUE lines
	// (shell- and systemd-EnvironmentFile-readable): BAREFLOW_MACHINE_ID,
	// BAREFLOW_MACHINE_NAME, BAREFLOW_CONTROLLER_URL, BAREFLOW_AGENT_PORT,
	// BAREFLOW_WORKSPACE. A host image starts its agent when it exists.
	HostConfPath = "/etc/bareflow/host.conf"
	// HostModulesPath lists the virtualisation kernel modules, for
	// systemd-modules-load (or the image's init).
	HostModulesPath = "/etc/modules-load.d/bareflow-kvm.conf"
)

// HostSettings is what makes an install a hypervisor host's.
type HostSettings struct {
	// ControllerURL is where the host agent reports (the guest
	// controller); written to host.conf.
	ControllerURL string `json:"controller_url,omitempty"`
	// AgentPort is the host agent's TCP port; default 8600 (16509 for a
	// libvirtd probe).
	AgentPort int `json:"agent_port,omitempty"`
	// WorkspacePath is where the workspace is mounted; default
	// /var/lib/libvirt/images.
	WorkspacePath string `json:"workspace_path,omitempty"`
	// WorkspaceFS is xfs (default) or ext4.
	WorkspaceFS string `json:"workspace_fs,omitempty"`
}

// WithDefaults fills the settings' defaults in.
func (h HostSettings) WithDefaults() HostSettings {
	if h.AgentPort == 0 {
		h.AgentPort = DefaultAgentPort
	}
	if h.WorkspacePath == "" {
		h.WorkspacePath = DefaultWorkspacePath
	}
	if h.WorkspaceFS == "" {
		h.WorkspaceFS = DefaultWorkspaceFS
	}
	return h
}

// ConvertHostInput is the input of the ConvertToHost workflow: an install
// (RootSizeBytes is the host's root size, 0 for the default; Reinstall and
// Keep are not used) and the host's settings.
type ConvertHostInput struct {
	Install     InstallInput
	MachineName string
	Host        HostSettings
	// AgentTimeout bounds the wait for the agent; default
	// DefaultAgentTimeout.
	AgentTimeout time.Duration
}

// ConvertHostResult is what a conversion did.
type ConvertHostResult struct {
	Install InstallResult `json:"install"`
	Host    HostCapacity  `json:"host"`
}

// HostCapacity is a host's agent and what it offers guests.
type HostCapacity struct {
	AgentURL      string `json:"agent_url"`
	CPUs          int    `json:"cpus"`
	MemoryBytes   int64  `json:"memory_bytes"`
	StorageBytes  int64  `json:"storage_bytes"`
	WorkspacePath string `json:"workspace_path"`
}

// UndoHostInput is the input of the UndoHost workflow: a wipe of a host
// without guests, whose host record goes at the end.
type UndoHostInput struct {
	Wipe WipeInput
}
