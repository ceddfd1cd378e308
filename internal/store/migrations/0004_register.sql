-- 0004_register: what registration learns and keeps: a machine's hardware
-- inventory (with the figures machine listings filter on), the ramdisk a
-- machine runs, BMC credentials waiting to be verified, bareflow's own
-- sealed secrets (its SSH key), and the RMCP+ port of a BMC network.

ALTER TABLE machines
    ADD COLUMN inventory    jsonb,
    ADD COLUMN inventory_at timestamptz,
    -- Logical CPUs, installed memory and whole disks, from the inventory.
    ADD COLUMN cpu_threads  integer NOT NULL DEFAULT 0,
    ADD COLUMN memory_bytes bigint NOT NULL DEFAULT 0,
    ADD COLUMN disk_count   integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT machines_inventory_object CHECK (inventory IS NULL OR jsonb_typeof(inventory) = 'object'),
    ADD CONSTRAINT machines_hardware_figures CHECK (cpu_threads >= 0 AND memory_bytes >= 0 AND disk_count >= 0);

CREATE INDEX machines_model_name_idx ON machines (model, name);

-- The newest phone-home of each machine's ramdisk. The boot service writes
-- it before it signals the waiting workflow, so that a workflow whose signal
-- was lost still finds its ramdisk.
CREATE TABLE ramdisk_sessions (
    machine_id   uuid PRIMARY KEY REFERENCES machines (id) ON DELETE CASCADE,
    workflow_id  text NOT NULL,
    addr         inet NOT NULL,
    ssh_port     integer NOT NULL DEFAULT 22,
    ssh_host_key text NOT NULL,
    macs         text[] NOT NULL DEFAULT '{}',
    phoned_at    timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT ramdisk_sessions_addr_host CHECK (masklen(addr) = CASE family(addr) WHEN 4 THEN 32 ELSE 128 END),
    CONSTRAINT ramdisk_sessions_host_key_present CHECK (ssh_host_key <> ''),
    CONSTRAINT ramdisk_sessions_ssh_port_range CHECK (ssh_port BETWEEN 1 AND 65535)
);

-- BMC credentials set on a BMC in-band and not yet verified out-of-band.
-- They move to machines.bmc_* only once the BMC answered with them, so a
-- machine never holds credentials that were not seen to work.
CREATE TABLE bmc_pending (
    machine_id uuid PRIMARY KEY REFERENCES machines (id) ON DELETE CASCADE,
    username   text NOT NULL,
    -- Sealed with additional data 'bmc_pending.password:' || machine_id.
    password   bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT bmc_pending_username_present CHECK (username <> '')
);

-- bareflow's own secrets (its SSH key), sealed with additional data
-- 'secrets:' || name.
CREATE TABLE secrets (
    name       text PRIMARY KEY,
    value      bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE networks
    -- The RMCP+ port the BMCs of a BMC network answer on.
    ADD COLUMN bmc_port integer NOT NULL DEFAULT 623,
    ADD CONSTRAINT networks_bmc_port_range CHECK (bmc_port BETWEEN 1 AND 65535);
