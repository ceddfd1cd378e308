-- 0006_images: the OS images machines are installed from.
CREATE TABLE images (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name          text COLLATE "C" NOT NULL,
    url           text NOT NULL,
    -- Extra HTTP headers to fetch it with (a token for an image service),
    -- a JSON object sealed with additional data 'images.headers:' || id.
    headers       bytea,
    format        text NOT NULL,
    -- 'sha256' or 'sha512', and the digest of the file at url in hex.
    checksum_algo text NOT NULL,
    checksum      text NOT NULL,
    -- The disk size the image expands to; 0 when unknown.
    virtual_size  bigint NOT NULL DEFAULT 0,
    os_family     text NOT NULL DEFAULT 'generic',
    boot_mode     text NOT NULL DEFAULT 'both',
    created_at    timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT images_name_unique UNIQUE (name),
    CONSTRAINT images_name_format CHECK (name ~ '^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$'),
    CONSTRAINT images_url_http CHECK (url ~ '^https?://'),
    CONSTRAINT images_format_valid CHECK (format IN ('raw', 'qcow2', 'raw.gz', 'raw.xz', 'raw.zst')),
    CONSTRAINT images_checksum_valid CHECK (
        (checksum_algo = 'sha256' AND checksum ~ '^[0-9a-f]{64}$') OR
        (checksum_algo = 'sha512' AND checksum ~ '^[0-9a-f]{128}$')),
    CONSTRAINT images_virtual_size_positive CHECK (virtual_size >= 0),
    CONSTRAINT images_os_family_valid CHECK (os_family IN ('debian', 'ubuntu', 'rhel', 'suse', 'generic')),
    CONSTRAINT images_boot_mode_valid CHECK (boot_mode IN ('bios', 'uefi', 'both'))
);
