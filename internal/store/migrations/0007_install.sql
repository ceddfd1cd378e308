-- 0007_install: the OS a machine was last given by an install: the image,
-- the disk it went to, the host name and the address it answered at.
ALTER TABLE machines
    ADD COLUMN os_image     uuid REFERENCES images (id) ON DELETE SET NULL,
    ADD COLUMN os_root_disk text NOT NULL DEFAULT '',
    ADD COLUMN os_hostname  text NOT NULL DEFAULT '',
    ADD COLUMN os_address   text NOT NULL DEFAULT '',
    ADD COLUMN installed_at timestamptz;

-- The boot service a ramdisk phoned home through serves cached images at
-- this URL prefix (the image's ID follows); empty when it caches none.
ALTER TABLE ramdisk_sessions
    ADD COLUMN image_cache_url text NOT NULL DEFAULT '';
