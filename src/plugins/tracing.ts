// Tracing (DESIGN §11). Decorates app.tracer: every agent call (via the agent service's hooks) and
// every run other plugins record (streams, workflows) becomes a trace — kept in a per-agent ring
// buffer for /traces and, with LANGSMITH_API_KEY set, exported to LangSmith as a run tree (redacted,
// sampled, batched in the background). onClose flushes what is still buffered, bounded by
// LANGSMITH_FLUSH_TIMEOUT_MS.
//
// API for other plugins (streams, coordinator):
//   const id = app.tracer.newId()                // pass as parentTraceId to app.agents.invoke(...)
//   …run…
//   app.tracer.recordRun({ id, name: 'stream.itinerary', runType: 'chain', agent: 'travel',
//     operation: 'itinerary', startTime, endTime: Date.now(), inputs, outputs, status, error?, usage? })
// Agent calls made with parentTraceId = id nest under that run in LangSmith; record the parent when
// it ends (children recorded earlier wait for it). recordRun never throws and never awaits.
import fp from 'fastify-plugin'
import { TraceStore } from '../tracing/trace-store.js'
import { Tracer } from '../tracing/tracer.js'

declare module 'fastify' {
  interface FastifyInstance {
    tracer: Tracer
  }
}

export default fp(async function tracing (app) {
  const config = app.config
  const log = app.log.child({ component: 'tracing' })
  // Imported only when configured: the langsmith package is about 13 MB and 150 ms of every start.
  const exporter = config.LANGSMITH_API_KEY
    ? new (await import('../tracing/langsmith-exporter.js')).LangSmithExporter({
      apiUrl: config.LANGSMITH_ENDPOINT,
      apiKey: config.LANGSMITH_API_KEY,
      projectName: config.LANGSMITH_PROJECT,
      sampleRate: config.LANGSMITH_SAMPLE_RATE,
      log
    })
    : null
  const tracer = new Tracer({ store: new TraceStore(config.AGENT_TRACE_BUFFER), exporter, log })
  app.decorate('tracer', tracer)
  app.features.tracing = exporter
    ? `LangSmith (${config.LANGSMITH_ENDPOINT}, project ${config.LANGSMITH_PROJECT}, ` +
      `sample rate ${config.LANGSMITH_SAMPLE_RATE}) + in-memory`
    : 'in-memory only (LANGSMITH_API_KEY unset)'

  app.agents.addHooks({
    onLlmCall: record => tracer.onLlmCall(record),
    onInvocation: record => tracer.onInvocation(record)
  })

  app.addHook('onClose', async () => {
    const flushed = await tracer.close(config.LANGSMITH_FLUSH_TIMEOUT_MS)
    if (!flushed) {
      log.warn(
        { timeoutMs: config.LANGSMITH_FLUSH_TIMEOUT_MS },
        'LangSmith flush did not finish before the timeout; remaining traces dropped'
      )
    }
  })
}, { name: 'tracing', dependencies: ['config', 'agents'] })
