// The MCP endpoint (Model Context Protocol, Streamable HTTP, stateless): POST /mcp carries JSON-RPC
// messages to a fresh SDK server and transport per request (src/protocols/mcp-server.ts); GET and DELETE
// (a standalone event stream, ending a session) do not exist without sessions: 405. Credentials, the
// permission and the `global` rate limit are the auth and rate-limit plugins' (route config); each tool
// call adds the scopes of the REST route it mirrors. The reply is taken over and handed to the transport.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import {
  BadRequestError, INTERNAL_MESSAGE, MethodNotAllowedError, NotAcceptableError, withDetails
} from '../errors.js'
import { createCallRegistry } from '../protocols/mcp-calls.js'
import { buildTools } from '../protocols/mcp-tools.js'
import { callerOf, callerSecurity as security } from './toolkit.js'

const Id = Type.Union([Type.String({ maxLength: 200 }), Type.Integer()])
const JsonRpcMessage = Type.Object({
  jsonrpc: Type.Literal('2.0'),
  id: Type.Optional(Id),
  method: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  params: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  result: Type.Optional(Type.Unknown()),
  error: Type.Optional(Type.Unknown())
}, { additionalProperties: false, description: 'A JSON-RPC 2.0 request, notification or response' })

const McpBody = Type.Union([JsonRpcMessage, Type.Array(JsonRpcMessage, { minItems: 1, maxItems: 100 })], {
  description: 'One JSON-RPC message or a batch (tools/list, tools/call, initialize, notifications/cancelled…)'
})
const McpReply = Type.Object({
  jsonrpc: Type.Literal('2.0'),
  id: Type.Union([Id, Type.Null()]),
  result: Type.Optional(Type.Unknown({ description: 'e.g. { tools } or a CallToolResult' })),
  error: Type.Optional(
    Type.Object({ code: Type.Integer(), message: Type.String(), data: Type.Optional(Type.Unknown()) })
  )
}, { description: 'The JSON-RPC response' })

const DESCRIPTION =
  'Model Context Protocol server (Streamable HTTP, stateless: no Mcp-Session-Id). Send JSON-RPC with ' +
  '`Accept: application/json, text/event-stream`; requests are answered as a `text/event-stream` carrying ' +
  'progress notifications and then the response, notifications and responses with 202. Tools: every agent ' +
  'method (`<agent>_<method>`), every predefined workflow (`workflow_<name>`), `agents_stats` (agent:stats) ' +
  'and `cache_clear` (cache:manage); tools/list shows only those the caller may use. A failed call is a tool ' +
  'result with `isError: true`, text `<AMK_CODE>: <message>` and `_meta["amk/error"]` = { code, message, details }. ' +
  'Tool calls count the rate limits of the REST route they mirror. See docs/protocols.md.'

// The MCP SDK (with zod under it: about 19 MB of heap and 240 ms) is loaded by the first /mcp request, not at
// start: most deployments never receive one (issue 16, memory at rest).
let sdk: ReturnType<typeof loadSdk> | undefined
async function loadSdk () {
  const [{ StreamableHTTPServerTransport }, { SUPPORTED_PROTOCOL_VERSIONS }, { createMcpServer }] = await Promise.all([
    import('@modelcontextprotocol/sdk/server/streamableHttp.js'),
    import('@modelcontextprotocol/sdk/types.js'),
    import('../protocols/mcp-server.js')
  ])
  return { StreamableHTTPServerTransport, SUPPORTED_PROTOCOL_VERSIONS, createMcpServer }
}

export default (async (app, opts: { version: string }) => {
  const tools = buildTools(app)
  const calls = createCallRegistry()

  app.post('/mcp', {
    config: { permission: 'agent:read' },
    schema: {
      operationId: 'mcp',
      tags: ['mcp'],
      summary: 'MCP (Model Context Protocol) over Streamable HTTP: list and call the agents as tools',
      description: DESCRIPTION,
      security,
      headers: Type.Object({
        accept: Type.Optional(Type.String({ description: 'Must list application/json and text/event-stream' })),
        'mcp-protocol-version': Type.Optional(Type.String({ description: 'The negotiated MCP version' }))
      }),
      body: McpBody,
      response: {
        200: {
          description: 'The JSON-RPC response, as JSON or as Server-Sent Events (progress notifications first)',
          content: {
            'application/json': { schema: McpReply },
            'text/event-stream': { schema: Type.String({ description: '`event: message` frames of JSON-RPC' }) }
          }
        }
        // A POST of notifications or responses only is answered 202 without a body (said in the description:
        // test/openapi/document.test.ts wants a schema for every success status but 204).
      }
    }
  }, async (request, reply) => {
    const accept = request.headers.accept ?? ''
    if (!accept.includes('application/json') || !accept.includes('text/event-stream')) {
      // 406 in the error shape (the SDK's own answer would be a JSON-RPC error).
      throw withDetails(new NotAcceptableError('MCP clients must send Accept: application/json, text/event-stream'), {
        accept
      })
    }
    const { StreamableHTTPServerTransport, SUPPORTED_PROTOCOL_VERSIONS, createMcpServer } = await (sdk ??= loadSdk())
    const version = request.headers['mcp-protocol-version']
    if (typeof version === 'string' && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) {
      throw withDetails(new BadRequestError(`Unsupported MCP-Protocol-Version ${version}`), {
        supported: SUPPORTED_PROTOCOL_VERSIONS
      })
    }
    const server = createMcpServer({ tools, calls, caller: callerOf(request), request, version: opts.version })
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined })
    reply.hijack()
    // The headers set so far (x-request-id, RateLimit-*, CORS, security) go out with the transport's own.
    for (const [name, value] of Object.entries(reply.getHeaders())) {
      if (value !== undefined && name !== 'content-length') reply.raw.setHeader(name, value)
    }
    // A client that goes away ends the transport, which aborts the calls of this request.
    reply.raw.once('close', () => { server.close().catch(() => {}) })
    try {
      await server.connect(transport)
      await transport.handleRequest(request.raw, reply.raw, request.body)
    } catch (err) {
      request.log.error({ err }, 'MCP request failed')
      if (!reply.raw.headersSent) {
        const body = {
          statusCode: 500,
          code: 'AMK_INTERNAL',
          error: 'Internal Server Error',
          message: INTERNAL_MESSAGE,
          requestId: request.id
        }
        reply.raw.writeHead(500, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body))
      } else reply.raw.destroy()
    }
  })

  // Without sessions there is no server-to-client stream to GET and no session to DELETE.
  for (const method of ['GET', 'DELETE'] as const) {
    app.route({
      method,
      url: '/mcp',
      config: { public: true },
      schema: { hide: true },
      handler: async () => {
        throw withDetails(new MethodNotAllowedError(method, '/mcp'), { allowed: ['POST'] }, { allow: 'POST' })
      }
    })
  }
}) satisfies FastifyPluginAsyncTypebox<{ version: string }>
