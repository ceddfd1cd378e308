-- 0005_raid: the RAID volumes a machine's last RAID build made, and the
-- block device its OS goes on.
ALTER TABLE machines
    ADD COLUMN raid_volumes jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN root_device  text NOT NULL DEFAULT '',
    ADD CONSTRAINT machines_raid_volumes_array CHECK (jsonb_typeof(raid_volumes) = 'array'),
    ADD CONSTRAINT machines_root_device_format CHECK (root_device ~ '^[A-Za-z0-9._/-]{0,128}$');
