-- author_ip holds a keyed hash from now on (issue #14); the server replaces
-- addresses stored by older releases at start (it holds the key, SQL does
-- not). This index finds them and stays empty afterwards (every new value
-- starts with 'h1:'), so the check at each start costs nothing.
CREATE INDEX comments_plaintext_ip ON comments (tenant_id)
    WHERE author_ip IS NOT NULL AND left(author_ip, 3) <> 'h1:';
COMMENT ON INDEX comments_plaintext_ip IS
    'hash_stored_addresses at start: addresses stored before the keyed hash (empty afterwards; new rows never enter it)';
