-- 0002_boot: DHCP leases, boot intents and phone-home tokens for the boot
-- service.

-- One row per address that was ever handed out on a network. A MAC keeps its
-- row (and so its address) across expiry and release until the address is
-- needed for another MAC; a declined address has no MAC and is unusable
-- until expires_at.
CREATE TABLE leases (
    network_id uuid NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
    addr       inet NOT NULL,
    mac        macaddr,
    state      text NOT NULL,
    expires_at timestamptz NOT NULL,
    hostname   text NOT NULL DEFAULT '',
    client_id  bytea,
    machine_id uuid REFERENCES machines (id) ON DELETE SET NULL,
    -- A reserved address is the MAC's planned address (a BMC's, an installed
    -- system's): it may lie outside the dynamic range and is never handed
    -- to another MAC, whatever its state.
    reserved   boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT leases_pkey PRIMARY KEY (network_id, addr),
    -- One lease per MAC and network: a MAC never holds two addresses.
    CONSTRAINT leases_mac_unique UNIQUE (network_id, mac),
    CONSTRAINT leases_state_valid CHECK (state IN ('offered', 'bound', 'declined', 'released')),
    CONSTRAINT leases_mac_unless_declined CHECK ((state = 'declined') = (mac IS NULL)),
    CONSTRAINT leases_addr_host CHECK (family(addr) = 4 AND masklen(addr) = 32),
    CONSTRAINT leases_hostname_length CHECK (length(hostname) <= 255)
);

-- Reuse of addresses that are free again: released or expired, oldest first.
CREATE INDEX leases_reusable_idx ON leases (network_id, expires_at);
CREATE INDEX leases_machine_idx ON leases (machine_id) WHERE machine_id IS NOT NULL;

-- A machine whose next network boot must load something other than its local
-- disk. Activities set it before they power-cycle the machine, and clear it
-- when the boot is done.
CREATE TABLE boot_intents (
    machine_id  uuid PRIMARY KEY REFERENCES machines (id) ON DELETE CASCADE,
    purpose     text NOT NULL,
    workflow_id text NOT NULL,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT boot_intents_purpose_valid CHECK (purpose IN ('ramdisk')),
    CONSTRAINT boot_intents_workflow_present CHECK (workflow_id <> '')
);

-- Single-use phone-home tokens, minted when a ramdisk script is rendered.
-- Only the SHA-256 of a token is stored.
CREATE TABLE boot_tokens (
    token_hash  bytea PRIMARY KEY,
    machine_id  uuid NOT NULL REFERENCES machines (id) ON DELETE CASCADE,
    workflow_id text NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT boot_tokens_hash_size CHECK (octet_length(token_hash) = 32)
);

CREATE INDEX boot_tokens_machine_idx ON boot_tokens (machine_id);
CREATE INDEX boot_tokens_expires_idx ON boot_tokens (expires_at);
