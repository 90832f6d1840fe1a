// Each workflow run is one trace: exported through the real langsmith client to the local LangSmith
// stand-in, the run is the root, every agent call of the run is its child (LLM calls below those), and
// the run is listed under the `workflow` traces.
import t from 'tap'
import { build } from '../support.js'
import { startLangSmithServer } from '../fixtures/langsmith-server.js'
import { COORDINATOR_ENV, post } from './support.js'

const LS_KEY = 'lsv2_pt_coordinator_test_key'

t.test('a workflow run is the root of one trace with its agent calls as children', async t => {
  const langsmith = await startLangSmithServer({ apiKey: LS_KEY })
  t.teardown(() => langsmith.close())
  const app = await build(t, {
    env: {
      ...COORDINATOR_ENV,
      LANGSMITH_API_KEY: LS_KEY,
      LANGSMITH_ENDPOINT: langsmith.url,
      LANGSMITH_PROJECT: 'amk-coordinator'
    }
  })
  const run = (
    await post(app, 'workflow', {
      workflowName: 'trip-campaign',
      input: { destination: 'Tbilisi', duration: 2, postCount: 1 }
    })
  ).json()
  t.equal(run.status, 'completed')
  t.equal(await app.tracer.flush(5000), true)

  const runs = [...langsmith.runs.values()]
  const roots = runs.filter(r => r.name === 'workflow.trip-campaign')
  t.equal(roots.length, 1)
  const [root] = roots
  t.match(root, {
    run_type: 'chain',
    session_name: 'amk-coordinator',
    extra: { metadata: { runId: run.runId, workflowName: 'trip-campaign' } }
  })
  t.equal(root.parent_run_id, undefined, 'the workflow run is the root')
  const agentRuns = runs.filter(r => r.parent_run_id === root.id)
  t.same(agentRuns.map(r => r.name).sort(), [
    'content.generateBlogPost',
    'content.generateSocialPosts',
    'travel.generateItinerary'
  ])
  t.same(
    agentRuns.map(r => r.extra?.metadata?.trace_id).sort(),
    run.steps.map((s: { traceId: string }) => s.traceId).sort(),
    "each step's traceId is its agent run"
  )
  for (const agentRun of agentRuns) { t.equal(runs.filter(r => r.parent_run_id === agentRun.id && r.run_type === 'llm').length, 1) }
  t.ok(runs.every(r => r.trace_id === root.id), 'one trace')

  const [listed] = app.tracer.recent('workflow')
  t.match(listed, { id: run.runId, name: 'workflow.trip-campaign', operation: 'sequential', status: 'success' })
  t.same(app.tracer.recent('travel').map(s => s.parentId), [run.runId])
})
