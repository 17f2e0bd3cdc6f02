-- author_ip holds a keyed hash from now on (issue #14); the server replaces
-- addresses stored by older releases at start. This index finds them and
-- stays empty afterwards (every new value starts with 'h1:').
CREATE INDEX comments_plaintext_ip ON comments (tenant_id)
    WHERE author_ip IS NOT NULL AND substr(author_ip, 1, 3) <> 'h1:';
