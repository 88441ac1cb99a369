/**
 * Stopping an instance (SIGTERM → RunningServer.close): requests in flight finish and get their answers; a client
 * still sending its request when the grace ends is cut off, so the shutdown goes on and closes everything cleanly.
 */
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { SANDBOX_CURPS } from '../../server/sandbox/kasu/kasu-sandbox.js';
import { startTestServer } from '../support/test-server.js';

const curp = SANDBOX_CURPS.find((person) => !person.deceased)!.curp;

/** A raw connection that sends the start of a request and then nothing more (what a slow client looks like). */
async function slowClient(url: string): Promise<{ socket: Socket; closed: Promise<void> }> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => {});
  socket.write(`POST /v1/checkouts HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"curp":`);
  return { socket, closed };
}

describe('shutdown', () => {
  it('when a client is still sending its request as the instance stops, then it is cut off once the grace ends and the shutdown completes', async () => {
    const server = await startTestServer({ backgroundJobs: false, shutdownGraceMs: 300 });
    const slow = await slowClient(server.url);
    // The request has reached the application (its body is being read) before the stop.
    await new Promise((resolve) => setTimeout(resolve, 100));
    let closed = false;
    const closing = server.close().then(() => { closed = true; });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(closed, 'still within the grace').toBe(false);
    const outcome = await Promise.race([closing.then(() => 'closed'), new Promise((resolve) => setTimeout(() => resolve('hung'), 5_000))]);
    expect(outcome).toBe('closed');
    await slow.closed; // the slow client's connection was cut
  });

  it('when a request is in flight as the instance stops, then it still gets its answer before the instance closes', async () => {
    const server = await startTestServer({ backgroundJobs: false, shutdownGraceMs: 5_000 });
    server.kasuSandbox!.faults.set([{ match: { kasuFunction: 'token_full' }, fault: 'latency', ms: 300 }]);
    const answer = fetch(`${server.url}/v1/checkouts`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ curp }),
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closing = server.close().then(() => 'closed');
    const response = await answer;
    expect(response.status).toBe(201);
    // Its keep-alive connection is closed once the answer has gone, not when the 5 s grace ends.
    expect(await Promise.race([closing, new Promise((resolve) => setTimeout(() => resolve('waiting for the grace'), 2_000))])).toBe('closed');
  });
});
