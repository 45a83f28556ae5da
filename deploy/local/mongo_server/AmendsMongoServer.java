// Local MongoDB-protocol server for amends: de.bwaldvogel mongo-java-server with its
// H2 MVStore backend, persisted to one file. Built and started by deploy/local/mongo.sh.
//
//   java -cp LIB/*:CLASSES AmendsMongoServer --host 127.0.0.1 --port 27017 --file DIR/mongo.mv
//        [--commit every-write|interval] [--retention-ms 2000] [--ttl-interval-s 60]
//        [--compact-on-close true|false] [--cache-mb 256]
//
// Durability: the MVStore is committed after every write command (default), so an
// acknowledged write is in the file (OS page cache) before the reply is sent and
// survives kill -9 of this process. "interval" commits once a second instead: a kill -9
// then loses the last ~1 s of acknowledged writes (measured: no clear speed gain).
//
// Whole commands only: a command writes its documents and each index as separate MVStore
// maps, so a commit taken while another thread is between those puts persists a document
// without its _id index entry (or the reverse). After a kill -9 that stays: the document
// is invisible to lookups by key and every upsert of it fails ("already existed"), or a
// lookup finds a key with no document and the upsert is refused as a duplicate. So every
// commit (per write, interval, housekeeping) waits for the write commands in flight, and
// MVStore's own auto-commits, which fire at any point of a command, are turned off.
//
// Keyed filters: mongo-java-server uses a unique index only when a filter's fields are
// exactly the index's fields, so {_id: X, status: "open"} (every guarded update) read the
// whole collection. KeyedH2Collection narrows such a filter by the unique index whose
// fields it contains (by equality or $in) and applies the whole filter to those documents,
// as mongod's planner does. Non-unique indexes stay unsupported (mongo-java-server).
//
// TTL: mongo-java-server accepts and lists TTL indexes but never deletes anything. A
// reaper thread here does what mongod's TTL monitor does: every --ttl-interval-s seconds
// (default 60) it deletes, for each index with expireAfterSeconds on a single field, the
// documents whose field is a date older than now - expireAfterSeconds.

import de.bwaldvogel.mongo.MongoCollection;
import de.bwaldvogel.mongo.MongoDatabase;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.CollectionOptions;
import de.bwaldvogel.mongo.backend.CursorRegistry;
import de.bwaldvogel.mongo.backend.Index;
import de.bwaldvogel.mongo.backend.IndexKey;
import de.bwaldvogel.mongo.backend.QueryResult;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.h2.H2Collection;
import de.bwaldvogel.mongo.backend.h2.H2Database;
import de.bwaldvogel.mongo.bson.Document;
import io.netty.channel.Channel;
import io.netty.channel.embedded.EmbeddedChannel;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.h2.mvstore.MVMap;
import org.h2.mvstore.MVStore;

public final class AmendsMongoServer {

    private static final int WIRE_VERSION = Integer.getInteger("amends.wireVersion", 13);

    private static final Set<String> WRITE_COMMANDS = Set.of(
        "insert", "update", "delete", "findandmodify", "createindexes", "dropindexes",
        "create", "drop", "dropdatabase", "renamecollection", "collmod", "aggregate");

    static final class KeyedH2Collection extends H2Collection {
        KeyedH2Collection(MongoDatabase database, String name, CollectionOptions options,
                MVMap<Object, Document> dataMap, MVMap<String, Object> metaMap,
                CursorRegistry cursorRegistry) {
            super(database, name, options, dataMap, metaMap, cursorRegistry);
        }

        @Override
        protected QueryResult queryDocuments(Document query, Document orderBy, int numberToSkip,
                int limit, int batchSize, Document fieldSelector) {
            for (Index<Object> index : getIndexes()) {
                if (index.canHandle(query)) {
                    return super.queryDocuments(query, orderBy, numberToSkip, limit, batchSize, fieldSelector);
                }
            }
            for (Index<Object> index : getIndexes()) {
                Document narrowed = narrowedBy(index, query);
                if (narrowed != null && index.canHandle(narrowed)) {
                    return matchDocuments(query, index.getPositions(narrowed), orderBy, numberToSkip,
                        limit, batchSize, fieldSelector);
                }
            }
            return super.queryDocuments(query, orderBy, numberToSkip, limit, batchSize, fieldSelector);
        }

        /** The part of {@code query} on the fields of a unique index, or null. */
        private static Document narrowedBy(Index<Object> index, Document query) {
            if (!index.isUnique()) {
                return null;
            }
            Document narrowed = new Document();
            for (IndexKey key : index.getKeys()) {
                Object value = query.get(key.getKey());
                // null would also match documents without the field, which a sparse index
                // does not hold: leave such filters to the full scan.
                if (value == null) {
                    return null;
                }
                narrowed.put(key.getKey(), value);
            }
            return narrowed.size() < query.size() ? narrowed : null;
        }
    }

    static final class KeyedH2Database extends H2Database {
        // The process's one store. A static, not a field: H2Database's constructor opens the
        // existing collections (calling openOrCreateCollection) before fields are set.
        static MVStore store;

        KeyedH2Database(String name, MVStore store, CursorRegistry cursorRegistry) {
            super(name, store, cursorRegistry);
        }

        @Override
        protected MongoCollection<Object> openOrCreateCollection(String name, CollectionOptions options) {
            // The same map names as H2Database, so existing data files open unchanged.
            String namespace = getFullCollectionNamespace(name);
            MVMap<Object, Document> dataMap = store.openMap("databases." + namespace);
            MVMap<String, Object> metaMap = store.openMap("meta." + namespace);
            return new KeyedH2Collection(this, name, options, dataMap, metaMap, cursorRegistry);
        }
    }

    static final class CommittingH2Backend extends H2Backend {
        private final boolean commitEveryWrite;
        private final MVStore store;
        private final int compactMillis;
        // Write commands share it (mongo-java-server serialises each collection itself);
        // a commit holds it alone, so it never sees a command half applied.
        private final ReentrantReadWriteLock commands = new ReentrantReadWriteLock();

        CommittingH2Backend(MVStore store, boolean commitEveryWrite, int compactMillis) {
            super(store);
            this.commitEveryWrite = commitEveryWrite;
            this.store = store;
            this.compactMillis = compactMillis;
        }

        /** Commits what the finished write commands changed (none is in flight). */
        void commitWholeCommands() {
            commands.writeLock().lock();
            try {
                if (!store.isClosed()) {
                    store.commit();
                }
            } finally {
                commands.writeLock().unlock();
            }
        }

        /** MVStore's housekeeping, which its background thread would do: rewrite chunks
         * that are mostly garbage so the file does not grow, then commit. */
        void rewriteSparseChunks(int targetFillRate, int writeBytes) {
            commands.writeLock().lock();
            try {
                if (!store.isClosed() && store.compact(targetFillRate, writeBytes)) {
                    store.commit();
                }
            } finally {
                commands.writeLock().unlock();
            }
        }

        // Called by MongoServer.shutdownNow() after it has closed every client connection
        // and its worker threads have finished: no command can write after this commit.
        // (Closing the store while clients were still connected let a write be applied and
        // acknowledged after the final commit: lost on restart.)
        @Override
        public void close() {
            commands.writeLock().lock();
            try {
                if (store.isClosed()) {
                    return; // closed already (the shutdown hook's fallback call)
                }
                store.commit();
                store.close(compactMillis); // compacts the file for up to compactMillis
                super.close();
            } finally {
                commands.writeLock().unlock();
            }
        }

        @Override
        protected MongoDatabase openOrCreateDatabase(String name) {
            return new KeyedH2Database(name, KeyedH2Database.store, getCursorRegistry());
        }

        @Override
        public Document handleCommand(Channel channel, String databaseName, String command, Document query) {
            if (!WRITE_COMMANDS.contains(command.toLowerCase(Locale.ROOT))) {
                return super.handleCommand(channel, databaseName, command, query);
            }
            commands.readLock().lock();
            try {
                return super.handleCommand(channel, databaseName, command, query);
            } finally {
                commands.readLock().unlock();
                // After the unlock: a read lock cannot be upgraded to the write lock.
                if (commitEveryWrite) {
                    commitWholeCommands();
                }
            }
        }
    }

    private static List<?> firstBatch(Document reply) {
        Object cursor = reply.get("cursor");
        if (cursor instanceof Document) {
            Object batch = ((Document) cursor).get("firstBatch");
            if (batch instanceof List) {
                return (List<?>) batch;
            }
        }
        return List.of();
    }

    /** One pass of the TTL monitor; returns the number of documents deleted. */
    static long reapExpired(H2Backend backend, Channel ch) {
        long deleted = 0;
        Document dbs = backend.handleCommand(ch, "admin", "listDatabases", new Document("listDatabases", 1));
        Object list = dbs.get("databases");
        if (!(list instanceof List)) {
            return 0;
        }
        for (Object d : (List<?>) list) {
            String db = String.valueOf(((Document) d).get("name"));
            if (db.equals("admin") || db.equals("local") || db.equals("config")) {
                continue;
            }
            for (Object c : firstBatch(backend.handleCommand(ch, db, "listCollections",
                    new Document("listCollections", 1)))) {
                String coll = String.valueOf(((Document) c).get("name"));
                if (coll.startsWith("system.")) {
                    continue;
                }
                for (Object i : firstBatch(backend.handleCommand(ch, db, "listIndexes",
                        new Document("listIndexes", coll)))) {
                    Document index = (Document) i;
                    Object ttl = index.get("expireAfterSeconds");
                    Object key = index.get("key");
                    if (!(ttl instanceof Number) || !(key instanceof Document) || ((Document) key).size() != 1) {
                        continue;
                    }
                    String field = ((Document) key).keySet().iterator().next();
                    Instant cutoff = Instant.now().minusMillis((long) (((Number) ttl).doubleValue() * 1000));
                    Document delete = new Document("delete", coll)
                        .append("deletes", List.of(new Document("q",
                            new Document(field, new Document("$lt", cutoff))).append("limit", 0)))
                        .append("ordered", false);
                    Document reply = backend.handleCommand(ch, db, "delete", delete);
                    Object n = reply.get("n");
                    if (n instanceof Number) {
                        deleted += ((Number) n).longValue();
                    }
                }
            }
        }
        return deleted;
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = new HashMap<>();
        for (int i = 0; i + 1 < argv.length; i += 2) {
            a.put(argv[i].replaceFirst("^--", ""), argv[i + 1]);
        }
        String host = a.getOrDefault("host", "127.0.0.1");
        int port = Integer.parseInt(a.getOrDefault("port", "27017"));
        String file = a.get("file");
        if (file == null) {
            throw new IllegalArgumentException("--file is required");
        }
        boolean everyWrite = !"interval".equals(a.getOrDefault("commit", "every-write"));
        boolean compactOnClose = Boolean.parseBoolean(a.getOrDefault("compact-on-close", "true"));

        // MVStore's page cache (H2 default 16 MB). Every query that is not a lookup by _id or
        // a unique key reads whole collections here (non-unique indexes are ignored), so a
        // cache smaller than the data re-reads and re-decodes every page on every scan.
        int cacheMb = Integer.parseInt(a.getOrDefault("cache-mb", "256"));
        // No MVStore auto-commit (delay 0: no background writer; buffer 0: no commit when a
        // command's changes pass the write buffer): both commit in the middle of a command.
        // This process commits whole commands instead (CommittingH2Backend).
        MVStore store = new MVStore.Builder().fileName(file).cacheSize(cacheMb)
            .autoCommitDisabled().autoCommitBufferSize(0).open();
        // Old chunks are kept this long before their space is reused (H2 default 45 s, to
        // outlive OS write-back on power loss). With a commit per write, 45 s of chunks makes
        // the file grow by hundreds of MB under load; a short retention keeps it small and is
        // still safe against a crash of this process (the OS page cache survives that).
        store.setRetentionTime(Integer.parseInt(a.getOrDefault("retention-ms", "2000")));
        KeyedH2Database.store = store;
        CommittingH2Backend backend = new CommittingH2Backend(store, everyWrite, compactOnClose ? 5000 : 0);
        // mongo-java-server's MONGO_5_0 reports wire version 8, which pymongo >= 4.14 refuses
        // (it needs >= 9, MongoDB 4.4). Report 5.0 / wire 13 instead.
        backend.version(new MongoVersion() {
            @Override
            public List<Integer> getVersionArray() {
                return List.of(5, 0, 0);
            }

            @Override
            public int getWireVersion() {
                return WIRE_VERSION;
            }
        });
        MongoServer server = new MongoServer(backend);

        int ttlInterval = Integer.parseInt(a.getOrDefault("ttl-interval-s", "60"));
        ScheduledExecutorService ttlMonitor = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "ttl-monitor");
            t.setDaemon(true);
            return t;
        });
        if (ttlInterval > 0) {
            EmbeddedChannel ttlChannel = new EmbeddedChannel();
            ttlMonitor.scheduleWithFixedDelay(() -> {
                try {
                    long n = reapExpired(backend, ttlChannel);
                    if (n > 0) {
                        System.err.printf("ttl-monitor: deleted %d expired documents%n", n);
                    }
                } catch (RuntimeException e) {
                    System.err.println("ttl-monitor: " + e);
                }
            }, ttlInterval, ttlInterval, TimeUnit.SECONDS);
        }
        // What MVStore's background writer did, as whole-command commits: in "interval" mode
        // the commit once a second; always, rewriting chunks that are mostly garbage (the
        // fill rate and write budget of its housekeeping under load).
        ScheduledExecutorService storeKeeper = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "store-keeper");
            t.setDaemon(true);
            return t;
        });
        storeKeeper.scheduleWithFixedDelay(() -> {
            try {
                if (!everyWrite) {
                    backend.commitWholeCommands();
                }
                backend.rewriteSparseChunks(81, 4 << 20);
            } catch (RuntimeException e) {
                System.err.println("store-keeper: " + e);
            }
        }, 1, 1, TimeUnit.SECONDS);
        server.bind(host, port);
        System.err.printf("AmendsMongoServer listening on %s:%d, file %s, commit=%s%n",
            host, port, file, everyWrite ? "every-write" : "interval");

        AtomicBoolean closed = new AtomicBoolean();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            if (!closed.compareAndSet(false, true)) {
                return;
            }
            System.err.println("AmendsMongoServer shutting down");
            ttlMonitor.shutdownNow();
            storeKeeper.shutdownNow();
            try {
                // Stop listening, close the clients' connections, let in-flight commands
                // finish, then backend.close() (CommittingH2Backend.close: commit, close).
                server.shutdownNow();
            } finally {
                backend.close(); // a no-op when shutdownNow got there
            }
            System.err.println("AmendsMongoServer stopped");
        }));
        Thread.currentThread().join();
    }
}
