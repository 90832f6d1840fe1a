// The workflow catalogue (GET /api/coordinator/workflows) publishes input schemas a generated form or
// client can trust: defaulted fields are not required, launch-plan's `target` has the method's default,
// and trip-package uses the travel agent's names `from`/`date` while still taking `origin`/`departureDate`.
import t from 'tap'
import { prepareWorkflow, WORKFLOWS } from '../../src/coordinator/workflows.js'

interface ObjectSchema { required?: string[], properties: Record<string, { default?: unknown }> }
const published = (name: string): ObjectSchema => JSON.parse(JSON.stringify(WORKFLOWS[name].input))

t.test('no published input schema requires a field that has a default', async t => {
  for (const name of Object.keys(WORKFLOWS)) {
    const schema = published(name)
    const defaulted = Object.entries(schema.properties).filter(([, p]) => 'default' in p).map(([key]) => key)
    t.ok(defaulted.length > 0, `${name} has defaulted fields`)
    t.same(
      (schema.required ?? []).filter(key => defaulted.includes(key)),
      [],
      `${name}: ${defaulted.join(', ')} are optional`
    )
  }
  t.same(published('trip-package').required, ['from', 'destination', 'date', 'returnDate'])
  t.same(published('launch-plan').required, ['industry'])
})

t.test('launch-plan runs without target, with the method\'s default', async t => {
  const spec = prepareWorkflow('launch-plan', { industry: 'travel' })
  t.match(spec, { master: { method: 'generateIdeas', input: { industry: 'travel', target: 'startups' } } })
})

t.test('trip-package takes from/date, and still the former origin/departureDate', async t => {
  const current = prepareWorkflow('trip-package', {
    from: 'Cairo',
    destination: 'Paris',
    date: '2030-05-01',
    returnDate: '2030-05-04'
  })
  const former = prepareWorkflow('trip-package', {
    origin: 'Cairo',
    destination: 'Paris',
    departureDate: '2030-05-01',
    returnDate: '2030-05-04'
  })
  const flights = { id: 'flights', input: { from: 'Cairo', to: 'Paris', date: '2030-05-01' } }
  t.match(current, {
    strategy: 'parallel',
    tasks: [flights, { id: 'hotels', input: { checkin: '2030-05-01' } }, { id: 'itinerary', input: { duration: 3 } }]
  })
  t.same(former, current, 'the former names give the same workflow')
  const tooLong = t.throws(() =>
    prepareWorkflow('trip-package', {
      from: 'Cairo',
      destination: 'Paris',
      date: '2030-05-01',
      returnDate: '2030-06-30'
    })
  )
  t.match(tooLong, { details: [{ field: 'input.returnDate', message: 'must be 1 to 21 days after date' }] })
})
