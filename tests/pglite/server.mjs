// PostgreSQL with pgvector on loopback for the tests: PGlite (PostgreSQL compiled to WASM) served
// over the PostgreSQL wire protocol by pglite-socket. Prints {"port": N} once it listens.
import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";
import { PGLiteSocketHandler, PGLiteSocketServer } from "@electric-sql/pglite-socket";

// A real server closes the connection after a Terminate message ('X', length 4); PGlite has no
// process to exit, so pglite-socket keeps the socket open and a client's graceful close (asyncpg
// waits for the server to hang up) would hang. Clients send Terminate on its own when idle.
const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);
const handleData = PGLiteSocketHandler.prototype.handleData;
PGLiteSocketHandler.prototype.handleData = async function (data) {
  if (this.messageBuffer.length === 0 && Buffer.from(data).equals(TERMINATE)) {
    this.socket?.end();
    return 0;
  }
  return handleData.call(this, data);
};

const db = await PGlite.create({ extensions: { vector } });
const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 16 });
server.addEventListener("listening", (event) => {
  console.log(JSON.stringify({ port: event.detail.port }));
});
await server.start();

const stop = async () => {
  await server.stop();
  await db.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
