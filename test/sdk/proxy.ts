// A TCP proxy between a client and the app that cuts the first response to a stream request after
// `cutAfter` bytes (a network drop, usually inside a frame) and records the head of every stream request.
import net from 'node:net'

/** How long the bytes before a cut are left to be read before the connection drops. */
const DROP_AFTER_MS = 200

export interface CuttingProxy { url: string, streamRequests: string[], close: () => Promise<void> }

export async function cuttingProxy (target: URL, cutAfter: number, marker = ' /api/stream/'): Promise<CuttingProxy> {
  const streamRequests: string[] = []
  const sockets = new Set<net.Socket>()
  let cut = false
  const server = net.createServer(client => {
    const upstream = net.connect(Number(target.port), target.hostname)
    sockets.add(client).add(upstream)
    let pending = ''
    let limit = Infinity
    let sent = 0
    client.on('data', chunk => {
      // Connections are kept alive: find each stream request's head within the bytes.
      pending += chunk.toString('latin1')
      const start = pending.indexOf(marker)
      const end = start >= 0 ? pending.indexOf('\r\n\r\n', start) : -1
      if (end >= 0) {
        streamRequests.push(pending.slice(pending.lastIndexOf('\n', start) + 1, end))
        pending = pending.slice(end)
        if (!cut) { cut = true; limit = sent + cutAfter }
      } else if (start < 0) pending = pending.slice(-64)
      upstream.write(chunk)
    })
    upstream.on('data', chunk => {
      if (sent >= limit) return // cut: nothing more reaches the client
      if (sent + chunk.length <= limit) { sent += chunk.length; client.write(chunk); return }
      const rest = chunk.subarray(0, limit - sent)
      sent = limit
      // Dropped with a FIN a moment after the bytes before the cut, so the client has read all of them before
      // the end: a reset, or a FIN in the same read as the last bytes, can make a browser discard what it had
      // not handed to the page yet (Chromium did once under CI load: the cut then landed before the first
      // event, leaving nothing to resume from). The client's own close ends the proxy's side.
      upstream.removeAllListeners('close')
      upstream.destroy()
      client.write(rest)
      setTimeout(() => client.end(), DROP_AFTER_MS)
    })
    for (const socket of [client, upstream]) {
      socket.on('error', () => {})
      socket.on('close', () => { client.destroy(); upstream.destroy(); sockets.delete(socket) })
    }
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    streamRequests,
    close: () => new Promise<void>(resolve => { for (const s of sockets) s.destroy(); server.close(() => resolve()) })
  }
}
