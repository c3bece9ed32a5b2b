import GRDB
import MeshwardCore

/// The database schema, as append-only named migrations.
///
/// A migration, once released, is never edited: a change is a new migration appended at the end.
/// Timestamps are REAL seconds since 2001-01-01 UTC (Foundation's reference date), which round-trip
/// a `Date` exactly. Addresses are their network-order bytes (4 or 16).
enum StoreSchema {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()

        migrator.registerMigration("1-channels-and-generations") { db in
            try db.execute(
                sql: """
                    CREATE TABLE channels (
                        id INTEGER PRIMARY KEY,
                        from_node TEXT NOT NULL,
                        to_node TEXT NOT NULL,
                        family TEXT NOT NULL CHECK (family IN ('ipv4', 'ipv6')),
                        step TEXT NOT NULL,
                        step_changed_at REAL NOT NULL,
                        -- The number of the newest generation ever issued; never decreases.
                        last_generation INTEGER NOT NULL DEFAULT 0,
                        UNIQUE (from_node, to_node, family)
                    );
                    CREATE TABLE generations (
                        channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
                        number INTEGER NOT NULL CHECK (number >= 1),
                        spi INTEGER NOT NULL CHECK (spi BETWEEN 256 AND 4294967295),
                        cipher TEXT NOT NULL,
                        source BLOB NOT NULL,
                        destination BLOB NOT NULL,
                        created_at REAL NOT NULL,
                        state TEXT NOT NULL CHECK (state IN ('pending', 'active', 'retiring', 'retired')),
                        activated_at REAL,
                        superseded_at REAL,
                        retired_at REAL,
                        -- AES-256-GCM under the master key; see SealingContext for the associated data.
                        seal_version INTEGER NOT NULL,
                        nonce BLOB NOT NULL,
                        sealed_key BLOB NOT NULL,
                        PRIMARY KEY (channel_id, number)
                    ) WITHOUT ROWID;
                    -- Keys and SPIs are fixed at issue: a generation's identity and key never change.
                    CREATE TRIGGER generations_are_immutable
                    BEFORE UPDATE OF channel_id, number, spi, cipher, source, destination, created_at,
                        seal_version, nonce, sealed_key ON generations
                    BEGIN
                        SELECT RAISE(ABORT, 'a generation''s key, SPI and addresses are immutable');
                    END;
                    """)
        }

        migrator.registerMigration("2-issued-spis") { db in
            try db.execute(
                sql: """
                    -- Every SPI ever issued per destination address. Never deleted, so never reissued.
                    CREATE TABLE issued_spis (
                        destination BLOB NOT NULL,
                        spi INTEGER NOT NULL,
                        channel TEXT NOT NULL,
                        issued_at REAL NOT NULL,
                        PRIMARY KEY (destination, spi)
                    ) WITHOUT ROWID;
                    CREATE TRIGGER issued_spis_are_permanent BEFORE DELETE ON issued_spis
                    BEGIN
                        SELECT RAISE(ABORT, 'issued SPIs are never deleted: they stay reserved forever');
                    END;
                    CREATE TRIGGER issued_spis_are_immutable BEFORE UPDATE ON issued_spis
                    BEGIN
                        SELECT RAISE(ABORT, 'issued SPIs are never changed');
                    END;
                    """)
        }

        migrator.registerMigration("3-revisions-and-journal") { db in
            try db.execute(
                sql: """
                    CREATE TABLE revisions (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        hash TEXT NOT NULL,
                        source TEXT NOT NULL,
                        summary TEXT NOT NULL,
                        applied_at REAL NOT NULL
                    );
                    CREATE TABLE journal (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        node TEXT NOT NULL,
                        operation TEXT NOT NULL,
                        target TEXT NOT NULL,
                        channel_from TEXT,
                        channel_to TEXT,
                        channel_family TEXT,
                        planned_at REAL NOT NULL,
                        applied_at REAL,
                        result TEXT NOT NULL,
                        revision_id INTEGER REFERENCES revisions(id)
                    );
                    CREATE INDEX journal_by_node ON journal (node, id);
                    """)
        }

        migrator.registerMigration("4-lease-metadata-sealing") { db in
            try db.execute(
                sql: """
                    CREATE TABLE lease (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        holder TEXT NOT NULL,
                        acquired_at REAL NOT NULL,
                        expires_at REAL NOT NULL
                    );
                    CREATE TABLE metadata (
                        key TEXT PRIMARY KEY NOT NULL,
                        value TEXT NOT NULL
                    ) WITHOUT ROWID;
                    -- A known value sealed under the master key when the store was created: a master
                    -- key that does not open it is the wrong key.
                    CREATE TABLE master_key_check (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        seal_version INTEGER NOT NULL,
                        nonce BLOB NOT NULL,
                        sealed_value BLOB NOT NULL,
                        created_at REAL NOT NULL
                    );
                    """)
        }

        migrator.registerMigration("5-switches-drains-epochs") { db in
            try db.execute(
                sql: """
                    -- When the sender was first sent the policy that pins this generation: from then on its
                    -- key material counts as used and is never installed again.
                    ALTER TABLE generations ADD COLUMN switch_sent_at REAL;
                    -- The receiver's inbound SA packet counter as last seen while the generation drains,
                    -- and when: the SA goes only once the counter stopped moving.
                    ALTER TABLE generations ADD COLUMN drain_packets INTEGER;
                    ALTER TABLE generations ADD COLUMN drain_packets_at REAL;
                    -- Inbound SAs of ours that no generation accounts for (left by a lost Store), with the
                    -- time a pass first saw their sender stop using them: their drain runs from then.
                    CREATE TABLE unaccounted_sas (
                        destination BLOB NOT NULL,
                        spi INTEGER NOT NULL,
                        freed_at REAL NOT NULL,
                        PRIMARY KEY (destination, spi)
                    ) WITHOUT ROWID;
                    -- The lease's epoch: one more every time the lease changes hands, never lower. Kept
                    -- apart from the lease row, which a release deletes.
                    ALTER TABLE lease ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
                    CREATE TABLE lease_epoch (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        epoch INTEGER NOT NULL
                    );
                    INSERT INTO lease_epoch (id, epoch) VALUES (1, 0);
                    CREATE TRIGGER lease_epoch_never_decreases BEFORE UPDATE ON lease_epoch
                    WHEN NEW.epoch < OLD.epoch
                    BEGIN
                        SELECT RAISE(ABORT, 'the lease epoch never decreases');
                    END;
                    """)
        }

        migrator.registerMigration("6-revision-command") { db in
            try db.execute(
                sql: """
                    -- What made the revision: 'apply', 'rekey --node web-1', 'reconcile'. NULL for
                    -- revisions recorded before this column existed.
                    ALTER TABLE revisions ADD COLUMN command TEXT;
                    """)
        }

        migrator.registerMigration("7-credentials") { db in
            try db.execute(
                sql: """
                    -- The cluster CA and the controller's TLS credential: a certificate (public) and
                    -- its private key sealed under the master key, bound to the credential's name.
                    CREATE TABLE credentials (
                        name TEXT PRIMARY KEY,
                        certificate_pem TEXT NOT NULL,
                        seal_version INTEGER NOT NULL,
                        nonce BLOB NOT NULL,
                        sealed_key BLOB NOT NULL,
                        created_at REAL NOT NULL
                    );
                    """)
        }

        migrator.registerMigration("8-revoked-certificates") { db in
            try db.execute(
                sql: """
                    -- Every node certificate the cluster CA issued (serial, node, validity), so that
                    -- `agent revoke --node` finds them all, and the serials revoked. Never deleted.
                    CREATE TABLE issued_certificates (
                        serial TEXT PRIMARY KEY,
                        node TEXT NOT NULL,
                        issued_at REAL NOT NULL,
                        not_valid_after REAL NOT NULL
                    );
                    CREATE INDEX issued_certificates_by_node ON issued_certificates (node);
                    CREATE TABLE revoked_certificates (
                        serial TEXT PRIMARY KEY,
                        node TEXT NOT NULL,
                        revoked_at REAL NOT NULL,
                        reason TEXT NOT NULL
                    );
                    CREATE TRIGGER revoked_certificates_are_permanent BEFORE DELETE ON revoked_certificates
                    BEGIN
                        SELECT RAISE(ABORT, 'a revoked certificate stays revoked');
                    END;
                    """)
        }

        migrator.registerMigration("9-join-tokens") { db in
            try db.execute(
                sql: """
                    -- One-time join tokens: the node each enrolls, its expiry, and SHA-256 of its secret
                    -- (the secret itself is never stored). A token is spent or revoked at most once.
                    CREATE TABLE join_tokens (
                        id TEXT PRIMARY KEY,
                        node TEXT NOT NULL,
                        verifier BLOB NOT NULL CHECK (length(verifier) = 32),
                        created_at REAL NOT NULL,
                        expires_at REAL NOT NULL,
                        spent_at REAL,
                        revoked_at REAL,
                        CHECK (spent_at IS NULL OR revoked_at IS NULL)
                    ) WITHOUT ROWID;
                    CREATE TRIGGER join_tokens_spend_once BEFORE UPDATE ON join_tokens
                    WHEN OLD.spent_at IS NOT NULL OR OLD.revoked_at IS NOT NULL
                    BEGIN
                        SELECT RAISE(ABORT, 'a spent or revoked join token never changes');
                    END;
                    """)
        }

        migrator.registerMigration("10-two-digit-certificate-serials") { db in
            // Serials were recorded as swift-certificates prints them, each byte without its
            // leading zero (`c:ff:1`); they are stored, printed and compared in
            // `CertificateSerial`'s form (`0c:ff:01`) from now on.
            for table in ["issued_certificates", "revoked_certificates"] {
                for serial in try String.fetchAll(db, sql: "SELECT serial FROM \(table)") {
                    let normalised = CertificateSerial.normalised(serial)
                    guard normalised != serial else { continue }
                    try db.execute(
                        sql: "UPDATE \(table) SET serial = ? WHERE serial = ?", arguments: [normalised, serial])
                }
            }
        }

        return migrator
    }
}
