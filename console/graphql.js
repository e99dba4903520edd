// The console's only way to the daemon: GraphQL at /graphql. Queries and mutations go by
// POST; subscriptions share one WebSocket speaking graphql-transport-ws.

import { signOut, token } from "./session.js";

const ENDPOINT = "/graphql";

/**
 * A refusal from the API: `code` is the first error's `extensions.code`, as REST's codes;
 * `data` what the answer held besides its errors, if anything.
 */
export class GraphQLError extends Error {
  constructor(errors, data = null) {
    super(errors.map((e) => e.message).join("; ") || "the request failed");
    this.name = "GraphQLError";
    this.errors = errors;
    this.data = data;
    this.extensions = errors[0]?.extensions ?? {};
    this.code = this.extensions.code ?? null;
  }
}

/**
 * Runs a query or mutation and gives its `data`; throws a GraphQLError when any error came
 * back. A token the daemon no longer accepts signs the tab out.
 */
export async function request(query, variables = {}, { bearer = token(), signal } = {}) {
  let response;
  try {
    response = await fetch(ENDPOINT, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${bearer}` },
      body: JSON.stringify({ query, variables }),
      signal,
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new GraphQLError([{ message: `the daemon could not be reached (${e.message})` }]);
  }
  let answer;
  try {
    answer = await response.json();
  } catch (e) {
    if (e.name === "AbortError") throw e;
    // A proxy's error page, say: not the daemon's GraphQL answer.
    throw new GraphQLError([
      { message: `HTTP ${response.status} ${response.statusText}, without a GraphQL answer` },
    ]);
  }
  if (answer.errors?.length) {
    const error = new GraphQLError(answer.errors, answer.data ?? null);
    if (error.code === "unauthorized" && bearer === token()) signOut(error.message);
    throw error;
  }
  return answer.data;
}

// Close codes with which the daemon refuses a socket; anything else is a broken connection
// that is worth opening again.
const REFUSALS = {
  4401: "the daemon did not accept the connection",
  4403: "the token was refused or revoked",
  4408: "the connection was not initialised in time",
  4429: "this token has too many open connections",
};
const RETRY_MS = [500, 1000, 2000, 5000];

/** The tab's one subscription socket, opened at the first subscription and closed after the last. */
class Subscriptions {
  #socket = null;
  #acked = false;
  #next = 1;
  #active = new Map(); // id -> { payload, sink }
  #attempt = 0;

  /**
   * Subscribes to `query` with `sink` (see `subscribe` below). Returns the function that
   * unsubscribes.
   */
  subscribe(query, variables, sink) {
    const id = String(this.#next++);
    this.#active.set(id, { payload: { query, variables }, sink });
    if (!this.#socket) this.#open();
    else if (this.#acked) this.#start(id);
    return () => this.#end(id, true);
  }

  // Each time a subscription is sent, first or after a reconnection, its sink is told:
  // whatever happened before is the page's to read again.
  #start(id) {
    const { payload, sink } = this.#active.get(id);
    this.#send({ id, type: "subscribe", payload });
    sink.subscribed?.();
  }

  #end(id, tell) {
    if (!this.#active.delete(id)) return;
    if (tell && this.#acked) this.#send({ id, type: "complete" });
    if (this.#active.size === 0 && this.#socket) {
      const socket = this.#socket;
      this.#socket = null;
      this.#acked = false;
      socket.close(1000, "no subscriptions left");
    }
  }

  #open() {
    const url = new URL(ENDPOINT, location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(url, "graphql-transport-ws");
    this.#socket = socket;
    this.#acked = false;
    socket.addEventListener("open", () => {
      socket.send(
        JSON.stringify({ type: "connection_init", payload: { Authorization: `Bearer ${token()}` } }),
      );
    });
    socket.addEventListener("message", (event) => this.#receive(socket, JSON.parse(event.data)));
    socket.addEventListener("close", (event) => this.#closed(socket, event));
  }

  #receive(socket, message) {
    if (socket !== this.#socket) return;
    const entry = this.#active.get(message.id);
    switch (message.type) {
      case "connection_ack":
        this.#acked = true;
        this.#attempt = 0;
        for (const id of this.#active.keys()) this.#start(id);
        break;
      case "ping":
        this.#send({ type: "pong" });
        break;
      case "next":
        if (!entry) break;
        if (message.payload.errors?.length) entry.sink.error(new GraphQLError(message.payload.errors));
        else entry.sink.next(message.payload.data);
        break;
      case "error":
        if (!entry) break;
        this.#end(message.id, false);
        entry.sink.error(new GraphQLError(message.payload));
        break;
      case "complete":
        if (entry) this.#end(message.id, false);
        break;
    }
  }

  #closed(socket, event) {
    if (socket !== this.#socket) return;
    this.#socket = null;
    this.#acked = false;
    const refusal = REFUSALS[event.code];
    if (refusal) {
      const sinks = [...this.#active.values()].map((entry) => entry.sink);
      this.#active.clear();
      const error = new GraphQLError([{ message: refusal, extensions: { code: `socket_${event.code}` } }]);
      for (const sink of sinks) sink.error(error);
      if (event.code === 4403) signOut(refusal);
      return;
    }
    // A dropped connection (daemon restart, network): open it again and subscribe again.
    // Events in between are not replayed; `subscribed` tells each sink to catch up.
    const delay = RETRY_MS[Math.min(this.#attempt++, RETRY_MS.length - 1)];
    setTimeout(() => {
      if (!this.#socket && this.#active.size > 0) this.#open();
    }, delay);
  }

  #send(message) {
    this.#socket.send(JSON.stringify(message));
  }
}

const subscriptions = new Subscriptions();

/**
 * Subscribes until `signal` aborts. `sink.next(data)` gets each result and
 * `sink.error(GraphQLError)` a refusal, after which nothing more comes. `sink.subscribed()`,
 * when given, is told each time the subscription is on its way to the daemon: at first, and
 * again after a dropped socket came back. What happens from then on is reported; what
 * happened before, the page reads again.
 */
export function subscribe(query, variables, sink, signal) {
  const unsubscribe = subscriptions.subscribe(query, variables, sink);
  signal.addEventListener("abort", unsubscribe, { once: true });
}
