-- 0001_init: machines, networks, operations, API tokens and the audit log.
--
-- Enumerations are text columns with CHECK constraints listing the values of
-- the matching type in bareflow/contract (or in package store for network
-- kinds). Adding a value takes a migration that replaces the constraint.

CREATE TABLE machines (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- A DNS label, so that it can be the host name. "C" collation keeps the
    -- listing order (and its keyset cursor) byte-wise and predictable.
    name             text COLLATE "C" NOT NULL,
    state            text NOT NULL DEFAULT 'discovered',
    pxe_mac          macaddr,
    system_uuid      text NOT NULL DEFAULT '',
    serial           text NOT NULL DEFAULT '',
    vendor           text NOT NULL DEFAULT '',
    model            text NOT NULL DEFAULT '',
    -- The BMC's LAN address and its RMCP+ port; both set or both NULL.
    bmc_addr         inet,
    bmc_port         integer,
    bmc_user         text NOT NULL DEFAULT '',
    -- AES-GCM sealed by package secret, with additional data
    -- 'machines.bmc_password:' || id, so it cannot be moved to another row.
    bmc_password     bytea,
    -- IPMI cipher suite ID; 0 lets the BMC client choose.
    bmc_cipher_suite integer NOT NULL DEFAULT 0,
    power_state      text NOT NULL DEFAULT 'unknown',
    power_state_at   timestamptz,
    last_error_code  text NOT NULL DEFAULT '',
    last_error       text NOT NULL DEFAULT '',
    labels           jsonb NOT NULL DEFAULT '{}',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    -- Incremented on every change but power-state observations; callers
    -- pass the version they read to detect concurrent changes.
    version          integer NOT NULL DEFAULT 1,

    CONSTRAINT machines_name_unique UNIQUE (name),
    CONSTRAINT machines_pxe_mac_unique UNIQUE (pxe_mac),
    CONSTRAINT machines_name_format CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    CONSTRAINT machines_state_valid CHECK (state IN
        ('discovered', 'enrolled', 'registering', 'ready', 'deploying', 'running', 'wiping', 'error')),
    CONSTRAINT machines_power_state_valid CHECK (power_state IN ('on', 'off', 'unknown')),
    CONSTRAINT machines_bmc_addr_port CHECK ((bmc_addr IS NULL) = (bmc_port IS NULL)),
    CONSTRAINT machines_bmc_port_range CHECK (bmc_port BETWEEN 1 AND 65535),
    CONSTRAINT machines_bmc_addr_host CHECK (bmc_addr IS NULL OR masklen(bmc_addr) = CASE family(bmc_addr) WHEN 4 THEN 32 ELSE 128 END),
    CONSTRAINT machines_bmc_password_has_addr CHECK (bmc_password IS NULL OR bmc_addr IS NOT NULL),
    CONSTRAINT machines_bmc_cipher_suite_range CHECK (bmc_cipher_suite BETWEEN 0 AND 255),
    CONSTRAINT machines_labels_object CHECK (jsonb_typeof(labels) = 'object'),
    CONSTRAINT machines_version_positive CHECK (version > 0)
);

CREATE INDEX machines_state_name_idx ON machines (state, name);
CREATE INDEX machines_vendor_name_idx ON machines (vendor, name);
CREATE INDEX machines_system_uuid_idx ON machines (system_uuid) WHERE system_uuid <> '';
CREATE INDEX machines_with_bmc_idx ON machines (name) WHERE bmc_addr IS NOT NULL;

CREATE TABLE networks (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name          text COLLATE "C" NOT NULL,
    kind          text NOT NULL,
    cidr          cidr NOT NULL,
    gateway       inet,
    dns           inet[] NOT NULL DEFAULT '{}',
    domain        text NOT NULL DEFAULT '',
    -- The dynamic range handed out by the boot service's DHCP server.
    range_start   inet,
    range_end     inet,
    lease_seconds integer NOT NULL DEFAULT 3600,
    -- The giaddr values of the DHCP relays that serve this network.
    relay_addrs   inet[] NOT NULL DEFAULT '{}',
    -- The boot service's interface on this network, for unrelayed DHCP.
    interface     text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT networks_name_unique UNIQUE (name),
    CONSTRAINT networks_name_format CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    CONSTRAINT networks_kind_valid CHECK (kind IN ('provisioning', 'bmc', 'os')),
    CONSTRAINT networks_gateway_in_cidr CHECK (gateway IS NULL OR gateway <<= cidr),
    CONSTRAINT networks_range_pair CHECK ((range_start IS NULL) = (range_end IS NULL)),
    CONSTRAINT networks_range_in_cidr CHECK (range_start IS NULL
        OR (range_start <<= cidr AND range_end <<= cidr AND range_start <= range_end)),
    CONSTRAINT networks_lease_positive CHECK (lease_seconds > 0)
);

CREATE INDEX networks_cidr_idx ON networks USING gist (cidr inet_ops);
CREATE INDEX networks_relay_addrs_idx ON networks USING gin (relay_addrs);

CREATE TABLE operations (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- NULL once the machine is deleted; machine_name keeps who it was.
    machine_id   uuid REFERENCES machines (id) ON DELETE SET NULL,
    machine_name text NOT NULL DEFAULT '',
    -- Operation kinds grow with each new workflow, so the check is on the
    -- form of the name, not on a list.
    kind         text NOT NULL,
    workflow_id  text NOT NULL DEFAULT '',
    run_id       text NOT NULL DEFAULT '',
    state        text NOT NULL DEFAULT 'pending',
    step         text NOT NULL DEFAULT '',
    progress     double precision NOT NULL DEFAULT 0,
    error_code   text NOT NULL DEFAULT '',
    error        text NOT NULL DEFAULT '',
    requested_by text NOT NULL DEFAULT '',
    started_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,

    CONSTRAINT operations_kind_format CHECK (kind ~ '^[a-z][a-z0-9_]{0,62}$'),
    CONSTRAINT operations_state_valid CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'canceled')),
    CONSTRAINT operations_progress_range CHECK (progress >= 0 AND progress <= 1),
    CONSTRAINT operations_finished_when_final CHECK
        ((state IN ('succeeded', 'failed', 'canceled')) = (finished_at IS NOT NULL))
);

CREATE INDEX operations_machine_started_idx ON operations (machine_id, started_at DESC, id DESC);
CREATE INDEX operations_started_idx ON operations (started_at DESC, id DESC);
CREATE INDEX operations_active_workflow_idx ON operations (workflow_id)
    WHERE state NOT IN ('succeeded', 'failed', 'canceled');
CREATE INDEX operations_active_machine_idx ON operations (machine_id, started_at DESC)
    WHERE state NOT IN ('succeeded', 'failed', 'canceled');

CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text NOT NULL,
    -- SHA-256 of the whole token; the token itself is never stored.
    token_hash   bytea NOT NULL,
    -- The first characters of the token, to tell tokens apart in listings.
    prefix       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,

    CONSTRAINT api_tokens_hash_unique UNIQUE (token_hash),
    CONSTRAINT api_tokens_hash_size CHECK (octet_length(token_hash) = 32),
    CONSTRAINT api_tokens_name_length CHECK (length(name) BETWEEN 1 AND 100)
);

-- A name identifies its token in the audit log: unique among live tokens.
CREATE UNIQUE INDEX api_tokens_active_name_uniq ON api_tokens (name) WHERE revoked_at IS NULL;

CREATE TABLE audit_log (
    id           bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    -- The name of the API token, or a bareflow component.
    actor        text NOT NULL DEFAULT '',
    action       text NOT NULL,
    target_kind  text NOT NULL DEFAULT '',
    target_id    text NOT NULL DEFAULT '',
    -- No foreign key: the trail outlives the operations it mentions.
    operation_id uuid,
    remote_addr  text NOT NULL DEFAULT '',
    details      jsonb NOT NULL DEFAULT '{}',

    CONSTRAINT audit_log_action_present CHECK (action <> ''),
    CONSTRAINT audit_log_details_object CHECK (jsonb_typeof(details) = 'object')
);

CREATE INDEX audit_log_target_idx ON audit_log (target_id, id DESC);
CREATE INDEX audit_log_at_idx ON audit_log (at);
