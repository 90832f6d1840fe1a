// One MCP server (the SDK's low-level Server) for one HTTP request of one caller, as stateless
// Streamable HTTP wants: tools/list answers the tools the caller's role may use; tools/call runs a tool
// and answers its output as structuredContent plus a text copy, or a tool error (`isError`) carrying this
// API's error code; notifications/cancelled aborts the caller's matching call running in this process.
import { Server } from '@modelcontextprotocol/sdk/server/index.js'
import {
  CallToolRequestSchema,
  CancelledNotificationSchema,
  ListToolsRequestSchema,
  type CallToolResult,
  type Tool
} from '@modelcontextprotocol/sdk/types.js'
import type { FastifyRequest } from 'fastify'
import { hasPermission, type Caller } from '../auth/roles.js'
import { ForbiddenError, isCatalogueError, NotFoundError, toPublicError, withDetails } from '../errors.js'
import type { CallRegistry } from './mcp-calls.js'
import type { McpTool, ToolContext } from './mcp-tools.js'

/** `_meta` keys of tool results: the error (code, message, details) and the call's usage, trace, run id. */
export const ERROR_META = 'amk/error'
export const CALL_META = 'amk/call'

export interface McpServerDeps {
  tools: readonly McpTool[]
  calls: CallRegistry
  caller: Caller
  request: FastifyRequest
  version: string
}

const INSTRUCTIONS =
  'Tools of the Amrikyy Agent API: each agent method as <agent>_<method>, each predefined workflow as ' +
  'workflow_<name>. Results are structured (structuredContent, outputSchema); a failed call is a tool error ' +
  'whose text starts with the API error code (AMK_VALIDATION, AMK_RATE_LIMITED, AMK_BUDGET_EXCEEDED, …).'

/** A failed call as an MCP tool error: the code leads the text; `_meta` carries the error shape's fields. */
export function toolError (error: unknown): CallToolResult {
  const { code, message, details } = toPublicError(error)
  return {
    isError: true,
    content: [{ type: 'text', text: `${code}: ${message}` }],
    _meta: { [ERROR_META]: { code, message, ...(details !== undefined ? { details } : {}) } }
  }
}

export function createMcpServer (deps: McpServerDeps): Server {
  const { caller, calls, request } = deps
  const permitted = (tool: McpTool) => hasPermission(caller.role, tool.permission)
  const byName = new Map(deps.tools.map(tool => [tool.name, tool]))
  const server = new Server(
    { name: 'amrikyy-agent-api', title: 'Amrikyy Agent API', version: deps.version },
    { capabilities: { tools: { listChanged: false } }, instructions: INSTRUCTIONS }
  )

  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: deps.tools.filter(permitted).map((tool): Tool => ({
      name: tool.name,
      title: tool.title,
      description: tool.description,
      inputSchema: tool.inputSchema,
      outputSchema: tool.outputSchema,
      annotations: { title: tool.title, ...tool.annotations }
    }))
  }))

  server.setRequestHandler(CallToolRequestSchema, async (call, extra): Promise<CallToolResult> => {
    const { name, arguments: args = {} } = call.params
    const tool = byName.get(name)
    if (!tool || !permitted(tool)) {
      // A tool the caller may not use is not listed; calling it anyway names the permission it needs.
      if (tool) {
        const { permission } = tool
        return toolError(withDetails(new ForbiddenError(permission), { tool: name, permission, role: caller.role }))
      }
      const available = deps.tools.filter(permitted).map(t => t.name)
      return toolError(withDetails(new NotFoundError(`No tool '${name}'`), { tool: name, available }))
    }
    const running = calls.start(caller.id, extra.requestId)
    const progressToken = call.params._meta?.progressToken
    const ctx: ToolContext = {
      caller,
      request,
      signal: AbortSignal.any([running.signal, extra.signal]),
      ...(progressToken !== undefined
        ? {
            progress: (progress, total, message) => {
              extra.sendNotification({
                method: 'notifications/progress',
                params: { progressToken, progress, ...(total !== undefined ? { total } : {}), message }
              }).catch(err => request.log.debug({ err }, 'MCP progress notification not sent'))
            }
          }
        : {})
    }
    try {
      const { output, meta } = await tool.call(args, ctx)
      return {
        content: [{ type: 'text', text: JSON.stringify(output) }],
        structuredContent: output,
        ...(meta ? { _meta: { [CALL_META]: meta } } : {})
      }
    } catch (error) {
      if (!isCatalogueError(error)) request.log.error({ err: error, tool: name }, 'MCP tool call failed')
      return toolError(error)
    } finally {
      running.end()
    }
  })

  server.setNotificationHandler(CancelledNotificationSchema, notification => {
    const { requestId, reason } = notification.params
    if (requestId !== undefined) calls.cancel(caller.id, requestId, reason)
  })
  return server
}
