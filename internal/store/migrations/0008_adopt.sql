-- 0008_adopt: servers taken into bareflow with the OS they already run.
-- An adopted machine records that OS (os-release's PRETTY_NAME and the
-- kernel; the host name and address go to os_hostname and os_address of
-- 0007), the SSH login bareflow uses there and the host key pinned for it.
ALTER TABLE machines
    ADD COLUMN os_name         text NOT NULL DEFAULT '',
    ADD COLUMN os_kernel       text NOT NULL DEFAULT '',
    ADD COLUMN os_ssh_user     text NOT NULL DEFAULT '',
    ADD COLUMN os_ssh_host_key text NOT NULL DEFAULT '',
    ADD COLUMN adopted_at      timestamptz;

-- An adoption under way: the BMC it claims (so that two adoptions cannot
-- claim one BMC) and the SSH password that installs bareflow's key, when the
-- operator gave one. The row goes when the adoption completes or fails; the
-- password never leaves this table but to the worker that uses it.
CREATE TABLE adopt_pending (
    machine_id   uuid PRIMARY KEY REFERENCES machines (id) ON DELETE CASCADE,
    bmc_addr     inet NOT NULL,
    bmc_port     integer NOT NULL,
    -- Sealed with additional data 'adopt_pending.ssh_password:' || machine_id.
    ssh_password bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT adopt_pending_bmc_unique UNIQUE (bmc_addr, bmc_port),
    CONSTRAINT adopt_pending_bmc_port_range CHECK (bmc_port BETWEEN 1 AND 65535)
);
