-- Quota checked when publisher join tokens are minted (0 = unlimited).
ALTER TABLE apps ADD COLUMN max_concurrent_streams INTEGER NOT NULL DEFAULT 0;
