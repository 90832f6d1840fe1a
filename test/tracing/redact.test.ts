// Redaction of traces before export: emails, phone numbers, card numbers, API keys and secrets are replaced;
// dates, prices and ids survive; nested values are walked and the input is left untouched.
import t from 'tap'
import { redact, redactText, PLACEHOLDER } from '../../src/tracing/redact.js'

t.test('emails, phone numbers and Luhn-valid card numbers are replaced', async t => {
  t.equal(redactText('write to jane.doe+trips@example.co.uk today'), `write to ${PLACEHOLDER.email} today`)
  t.equal(redactText('card 4111 1111 1111 1111 exp 12/29'), `card ${PLACEHOLDER.card} exp 12/29`)
  t.equal(redactText('card 5500-0000-0000-0004'), `card ${PLACEHOLDER.card}`)
  t.equal(redactText('+1 (415) 555-0199'), PLACEHOLDER.phone)
  t.equal(redactText('call 415-555-0199 or +44 20 7946 0958'), `call ${PLACEHOLDER.phone} or ${PLACEHOLDER.phone}`)
})

t.test('dates, prices, counts and ids that only look numeric survive', async t => {
  const text =
    'from CAI to JFK on 2025-06-01 (20250601), 2 passengers, budget 1500, order 4111111111111112, id 0191f6b2-7c1e-7d2a-8f3b-1234567890ab'
  t.equal(redactText(text), text)
})

t.test('API keys and long secrets are replaced', async t => {
  t.equal(redactText('key amk_test_user_key_000000000000000000'), `key ${PLACEHOLDER.apiKey}`)
  t.equal(redactText('sk-abcdefghijklmnop1234'), PLACEHOLDER.apiKey)
  t.equal(redactText('AIzaSyA1234567890abcdefghijklmnopqrstuv'), PLACEHOLDER.apiKey)
  t.equal(redactText('sha deadbeefdeadbeefdeadbeefdeadbeef00'), `sha ${PLACEHOLDER.secret}`)
  t.equal(redactText('blob QWxhZGRpbjpPcGVuU2VzYW1lQWxhZGRpbjpPcGVuU2VzYW1l1234'), `blob ${PLACEHOLDER.secret}`)
  t.notMatch(redactText('Authorization: Bearer abcdefghijklmnopqrstuvwxyz'), /abcdefghijklmnop/)
})

t.test('redact walks nested values, redacts credential-named keys and leaves the input untouched', async t => {
  const input = {
    traveler: { email: 'a@b.io', notes: ['call +33 1 23 45 67 89'], password: 'hunter22', apiKey: 'short' },
    passengers: 2,
    tokens: 'fine'
  }
  const out = redact(input)
  t.same(out, {
    traveler: {
      email: PLACEHOLDER.email,
      notes: [`call ${PLACEHOLDER.phone}`],
      password: '[REDACTED]',
      apiKey: '[REDACTED]'
    },
    passengers: 2,
    tokens: 'fine'
  })
  t.equal(input.traveler.email, 'a@b.io', 'original not mutated')
  t.equal(redact(null), null)
})
