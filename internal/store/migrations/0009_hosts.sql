-- 0009_hosts: hypervisor hosts. A machine converted by ConvertToHost has a
-- row here with its agent and capacity; the row goes when UndoHost has wiped
-- it. guests is set by the guest controller (PATCH /api/v1/hosts/{id}); an
-- undo is refused while it is above zero, and undo_at marks a host being
-- turned back, which takes no more guests.
CREATE TABLE hosts (
    machine_id     uuid PRIMARY KEY REFERENCES machines (id) ON DELETE CASCADE,
    agent_url      text NOT NULL,
    cpus           integer NOT NULL,
    memory_bytes   bigint NOT NULL,
    storage_bytes  bigint NOT NULL,
    workspace_path text NOT NULL,
    guests         integer NOT NULL DEFAULT 0,
    converted_at   timestamptz NOT NULL DEFAULT now(),
    undo_at        timestamptz,

    CONSTRAINT hosts_capacity_valid CHECK (cpus >= 0 AND memory_bytes >= 0 AND storage_bytes >= 0),
    CONSTRAINT hosts_guests_valid CHECK (guests >= 0)
);
