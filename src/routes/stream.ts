// Streaming routes (DESIGN §4.4, §8). Thin: the body/query schema is the agent method's own input
// schema (+ onDisconnect), policy sits in route config, and the stream service does the rest. GET forms
// exist for EventSource: query parameters, arrays as repeated or comma-separated parameters, `?ticket=`.
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type, type TProperties, type TSchema } from 'typebox'
import type { AgentName } from '../agents/types.js'
import { UnauthorizedError } from '../errors.js'
import { cacheBypass, unknownAgent } from '../agents/request-rules.js'
import { isRecord, stringFieldOf } from '../agents/unknown-values.js'
import type { Caller } from '../auth/roles.js'
import type { Opener } from '../streams/service.js'
// The response components are registered once, at the root, by the schema registry (src/schemas/index.ts).
import {
  CancelResultSchema,
  CleanupBodySchema,
  CleanupResultSchema,
  streamFormatsResponse,
  StreamStatsSchema,
  TicketSchema
} from '../schemas/streams.js'
import { ref } from '../schemas/common.js'
import { callerOf, callerSecurity as security, openSse } from './toolkit.js'
import { FormatHeaders, FormatQuery, stripChatEnvelope, wireFor } from '../protocols/ui-message-negotiation.js'

/** Stream routes and the method each streams; items events come from the method's `streamItems`. */
const ROUTES: Record<string, { agent: AgentName, method: string }> = {
  blog: { agent: 'content', method: 'generateBlogPost' },
  itinerary: { agent: 'travel', method: 'generateItinerary' },
  recommendations: { agent: 'travel', method: 'getDestinationRecommendations' },
  social: { agent: 'content', method: 'generateSocialPosts' }
}

const noMore = {
  description: 'Resumed at the end of the stream: nothing follows (EventSource stops reconnecting on 204)',
  type: 'null'
}
/**
 * A dropped GET stream (EventSource) reconnects by itself, so it continues by default: a network blip must not
 * cancel the generation. A POST stream keeps `cancel`: a fetch client that goes away means it (set `continue`
 * to resume, as the SDK does). Cancelling is always explicit too: the cancel route.
 */
const onDisconnect = (fallback: 'cancel' | 'continue') =>
  Type.Optional(
    Type.Union([Type.Literal('cancel'), Type.Literal('continue')], {
      default: fallback,
      description:
        `${fallback} (default here): ` +
        (fallback === 'cancel'
          ? 'a client disconnect aborts the generation. continue: it runs on into the event log, for a later resume'
          : 'a client disconnect leaves the generation running into the event log, ' +
            'so the reconnect (Last-Event-ID) resumes it. cancel: a disconnect aborts it')
    })
  )
const StreamIdParams = Type.Object({
  streamId: Type.String({
    pattern: '^st_[A-Za-z0-9_]{1,61}$',
    description:
      'Stream id (st_…), as in the connected event; never "stats", so /api/stream/stats/{agent} is a different route'
  })
})

const LastEventId = Type.Optional(
  Type.String({ description: 'Resume position (same as the Last-Event-ID header, for clients that cannot send it)' })
)
const Ticket = Type.Optional(
  Type.String({ description: 'One-time ticket from POST /api/stream/tickets (EventSource cannot send headers)' })
)

/** Query parameters can carry scalars and arrays of scalars; object-valued inputs (context) need POST. */
function queryable (schema: TSchema): boolean {
  if (Type.IsLiteral(schema) || Type.IsEnum(schema)) return true
  if (Type.IsUnion(schema)) return schema.anyOf.every(queryable)
  if (Type.IsArray(schema)) return queryable(schema.items)
  return Type.IsString(schema) || Type.IsNumber(schema) || Type.IsInteger(schema) || Type.IsBoolean(schema)
}

/** Opens the response in the request's format (native §8 events, or the AI SDK UI message stream). */
const opener = (request: FastifyRequest, reply: FastifyReply): Opener => () => ({
  ...openSse(reply),
  wire: wireFor(request)
})

function lastEventIdOf (request: FastifyRequest): string | undefined {
  const header = request.headers['last-event-id']
  const query = stringFieldOf(request.query, 'lastEventId')
  return (typeof header === 'string' && header) || query || undefined
}

const routes: FastifyPluginAsyncTypebox = async (app) => {
  const service = app.streams.service

  /**
   * The caller of a stream request. A ticket stands for the credential it was issued to, so that credential
   * must still be valid when the ticket starts or resumes a stream (not revoked, expired or deleted).
   */
  const streamCaller = async (request: FastifyRequest): Promise<Caller> => {
    const caller = request.caller
    if (!caller) throw new UnauthorizedError('Authentication required')
    if (request.streamTicket) await app.auth.checkCaller(caller)
    return caller
  }

  /** Starts a stream, or — with a Last-Event-ID (a browser's automatic reconnect) — resumes it. */
  const startOrResume = (path: string) => async (request: FastifyRequest, reply: FastifyReply) => {
    const { agent, method } = ROUTES[path]
    const caller = await streamCaller(request)
    const lastEventId = lastEventIdOf(request)
    const ticket = request.streamTicket
    if (lastEventId) {
      const streamId = lastEventId.slice(0, Math.max(0, lastEventId.lastIndexOf('-')))
      const served = await service.resume(
        { streamId, lastEventId, caller, ticketStreamId: ticket ? ticket.streamId : undefined },
        opener(request, reply)
      )
      if (served === 'finished') return reply.code(204).send()
      return
    }
    const fallback = request.method === 'GET' ? 'continue' : 'cancel'
    const sent = request.method === 'GET' ? request.query : request.body
    const { onDisconnect, ticket: _t, lastEventId: _l, format: _f, ...input } = isRecord(sent) ? sent : {}
    const { streamItems } = app.agents.definitions[agent].methods[method]
    await service.start({
      agent,
      method,
      input,
      caller,
      onDisconnect: onDisconnect === 'cancel' || onDisconnect === 'continue' ? onDisconnect : fallback,
      items: streamItems,
      ticket: ticket?.ticket,
      noCache: cacheBypass(request.headers)
    }, opener(request, reply))
  }

  for (const [path, route] of Object.entries(ROUTES)) {
    const definition = app.agents.definitions[route.agent]
    const method = definition.methods[route.method]
    const props: TProperties = Type.IsObject(method.input) ? method.input.properties : {}
    const rateLimits = [
      { scope: route.agent, max: definition.rateLimit },
      { scope: `${route.agent}.${route.method}`, max: method.rateLimit }
    ]
    const items = method.streamItems
    const extra = items
      ? `a \`${items.event}\` event per finished item of \`${items.property}\`, then result`
      : 'result'
    const summary = `Stream ${route.agent}.${route.method}: connected, progress, tokens, ${extra}, usage, complete`
    const queryProps = Object.fromEntries(Object.entries(props).filter(([, s]) => queryable(s)))
    const arrays = Object.keys(queryProps).filter(k => Type.IsArray(queryProps[k]))

    app.post(
      `/${path}`,
      {
        config: { permission: 'agent:streaming', rateLimits, sse: true },
        preValidation: stripChatEnvelope,
        schema: {
          operationId: `stream_${path}`,
          tags: ['stream'],
          summary,
          description:
            `Body: the input of ${route.agent}.${route.method} plus onDisconnect. ` +
            'A Last-Event-ID header resumes the stream it names instead. With format=ui-message-stream the ' +
            'AI SDK chat envelope (id, messages, trigger, messageId) is accepted and ignored: the input is ' +
            "the transport's `body` option. An answer may come from the response cache (its text then arrives " +
            'in chunks); `Cache-Control: no-cache` or `no-store` bypasses it.',
          security,
          querystring: Type.Object({ format: FormatQuery, lastEventId: LastEventId }),
          headers: FormatHeaders,
          body: Type.Object({ ...props, onDisconnect: onDisconnect('cancel') }, { additionalProperties: false }),
          response: { 200: streamFormatsResponse, 204: noMore }
        }
      },
      startOrResume(path)
    )

    app.get(
      `/${path}`,
      {
        // A HEAD must not start a paid generation.
        exposeHeadRoute: false,
        config: { permission: 'agent:streaming', rateLimits, streamTicket: true, sse: true },
        // One parameter with commas is split into items; repeat the parameter for items that contain a comma.
        preValidation: async request => {
          const query: unknown = request.query
          if (!isRecord(query)) return
          for (const key of arrays) {
            const value = query[key]
            if (typeof value === 'string') {
              query[key] = value
                .split(',')
                .map(s => s.trim())
                .filter(Boolean)
            }
          }
        },
        schema: {
          operationId: `stream_${path}_get`,
          tags: ['stream'],
          summary: `${summary} (EventSource)`,
          description:
            'Query parameters = the method input (arrays: repeat the parameter or separate items with commas; ' +
            'object-valued fields need POST). ' +
            'Authenticate with a header or `ticket`. A browser reconnect (Last-Event-ID) resumes the same stream.',
          security: [...security, {}],
          querystring: Type.Object(
            {
              ...queryProps,
              onDisconnect: onDisconnect('continue'),
              ticket: Ticket,
              lastEventId: LastEventId,
              format: FormatQuery
            },
            { additionalProperties: false }
          ),
          headers: FormatHeaders,
          response: { 200: streamFormatsResponse, 204: noMore }
        }
      },
      startOrResume(path)
    )
  }

  app.get(
    '/:streamId/events',
    {
      exposeHeadRoute: false,
      config: { permission: 'agent:streaming', streamTicket: true, sse: true },
      schema: {
        operationId: 'stream_resume',
        tags: ['stream'],
        summary: 'Resume a stream: replays the events after Last-Event-ID, then follows live (any replica, owner only)',
        description:
          '410 AMK_GONE when the stream is unknown or its events expired (STREAM_REPLAY_TTL) ' +
          'or were trimmed past the position (details.reason expired | gap).',
        security: [...security, {}],
        params: StreamIdParams,
        querystring: Type.Object(
          { lastEventId: LastEventId, ticket: Ticket, format: FormatQuery },
          { additionalProperties: false }
        ),
        headers: FormatHeaders,
        response: { 200: streamFormatsResponse, 204: noMore }
      }
    },
    async (request, reply) => {
      const ticket = request.streamTicket
      const served = await service.resume(
        {
          streamId: request.params.streamId,
          lastEventId: lastEventIdOf(request),
          caller: await streamCaller(request),
          ticketStreamId: ticket ? ticket.streamId : undefined
        },
        opener(request, reply)
      )
      if (served === 'finished') return reply.code(204).send()
    }
  )

  app.post(
    '/:streamId/cancel',
    {
      config: { permission: 'agent:streaming' },
      schema: {
        operationId: 'stream_cancel',
        tags: ['stream'],
        summary: 'Cancel a stream (its owner, or agent:manage): aborts the provider call wherever it runs',
        security,
        params: StreamIdParams,
        response: { 200: ref(CancelResultSchema) }
      }
    },
    async request => {
      const status = await service.cancel(request.params.streamId, callerOf(request))
      return { success: true, streamId: request.params.streamId, status }
    }
  )

  app.post('/tickets', {
    config: { permission: 'agent:streaming' },
    schema: {
      operationId: 'stream_createTicket',
      tags: ['stream', 'auth'],
      summary: 'One-time ticket for EventSource (`?ticket=`): starts one stream, then only resumes that stream',
      security,
      response: { 201: ref(TicketSchema) }
    }
  }, async (request, reply) => {
    const { ticket, expiresAt } = await app.streams.tickets.issue(callerOf(request))
    return reply
      .code(201)
      .send({
        ticket,
        expiresAt: new Date(expiresAt).toISOString(),
        expiresInSeconds: Math.round((expiresAt - Date.now()) / 1000)
      })
  })

  app.get('/stats/:agent', {
    config: { permission: 'agent:stats' },
    schema: {
      operationId: 'stream_stats',
      tags: ['stream'],
      summary: 'Streaming statistics of one agent on this instance',
      security,
      params: Type.Object({ agent: Type.String() }),
      response: { 200: ref(StreamStatsSchema) }
    }
  }, async (request) => {
    const { agent } = request.params
    if (!Object.hasOwn(app.agents.definitions, agent)) {
      throw unknownAgent(agent, Object.keys(app.agents.definitions))
    }
    return {
      ...app.streams.registry.statsFor(agent),
      instanceId: app.streams.instanceId,
      eventLog: app.streams.log.kind,
      openConnections: [...service.connections].filter(c => app.streams.registry.get(c.streamId)?.agent === agent)
        .length
    }
  })

  app.post('/cleanup', {
    config: { permission: 'agent:manage' },
    schema: {
      operationId: 'stream_cleanup',
      tags: ['stream'],
      summary: 'Cancel orphaned generations and drop expired stream logs on this instance',
      security,
      body: Type.Optional(CleanupBodySchema),
      response: { 200: ref(CleanupResultSchema) }
    }
  }, async (request) => {
    const result = service.cleanup((request.body?.maxIdleSeconds ?? 300) * 1000)
    return { success: true, ...result, active: app.streams.registry.active() }
  })
}

export default routes
