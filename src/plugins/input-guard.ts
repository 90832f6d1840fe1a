// Checks every request's input where it enters, before schema validation: JSON nesting depth, and control
// characters and unpaired surrogates in strings and keys (body, query string, path parameters). Deeply nested
// values would overflow recursive code further in (hashing, validation, serialisation), and NUL bytes and
// unpaired surrogates fail in PostgreSQL, so both are refused with a 400 naming the field. The walk is
// iterative and stops at the first problem, so its cost is one pass over what JSON.parse already built.
// Routes open to anonymous callers accept small bodies only (PUBLIC_BODY_LIMIT).
import fp from 'fastify-plugin'
import { ValidationError, withDetails } from '../errors.js'

/**
 * C0 control characters other than tab, line feed and carriage return (NUL included), and unpaired UTF-16
 * surrogates (`"\ud800"` in JSON): PostgreSQL refuses both in text and jsonb.
 */
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f]|\p{Cs}/u // eslint-disable-line no-control-regex

export interface InputProblem { field: string, message: string }

interface Frame { value: unknown, key: string | number, parent: Frame | null, depth: number }

/** The dotted path of a frame (`body.context.a.3`, as validation errors name fields), built only on a problem. */
function describe (frame: Frame): string {
  const parts: string[] = []
  for (let f: Frame | null = frame; f; f = f.parent) {
    const key = String(f.key)
    parts.push(key.length > 40 ? `${key.slice(0, 40)}…` : key)
  }
  return parts.reverse().join('.')
}

const controlMessage =
  'must not contain control characters (NUL, U+0001–U+001F other than tab and newlines) or unpaired surrogates'

/** Checks a string in place, or queues an object or array; other scalars need nothing. */
function visit (
  child: unknown,
  key: string | number,
  parent: Frame,
  depth: number,
  stack: Frame[]
): InputProblem | null {
  if (typeof child === 'string') {
    if (CONTROL.test(child)) return { field: describe({ value: child, key, parent, depth }), message: controlMessage }
  } else if (child !== null && typeof child === 'object') {
    stack.push({ value: child, key, parent, depth })
  }
  return null
}

/**
 * The first problem in `value`, or null. `root` names the request part (body, query, params);
 * `maxDepth` is the deepest nesting of objects and arrays allowed (the root value is depth 1).
 */
export function findInputProblem (value: unknown, root: string, maxDepth: number): InputProblem | null {
  if (typeof value === 'string') return CONTROL.test(value) ? { field: root, message: controlMessage } : null
  if (value === null || typeof value !== 'object') return null
  const stack: Frame[] = [{ value, key: root, parent: null, depth: 0 }]
  for (let frame = stack.pop(); frame; frame = stack.pop()) {
    const depth = frame.depth + 1
    if (depth > maxDepth) return { field: describe(frame), message: `is nested deeper than ${maxDepth} levels` }
    const current = frame.value
    if (Array.isArray(current)) {
      for (let i = 0; i < current.length; i++) {
        const problem = visit(current[i], i, frame, depth, stack)
        if (problem) return problem
      }
      continue
    }
    if (current === null || typeof current !== 'object') continue
    for (const [key, child] of Object.entries(current)) {
      if (CONTROL.test(key)) {
        return {
          field: describe({ value: null, key, parent: frame, depth }),
          message: 'has a key with control characters or unpaired surrogates'
        }
      }
      const problem = visit(child, key, frame, depth, stack)
      if (problem) return problem
    }
  }
  return null
}

/** Body limit of routes open to anonymous callers (login…): their bodies are small, and parsing is not free. */
const PUBLIC_BODY_LIMIT = 16_384

export default fp(async function inputGuard (app) {
  const maxDepth = app.config.JSON_MAX_DEPTH
  app.addHook('onRoute', (route) => {
    if (route.config?.public && route.bodyLimit === undefined) {
      route.bodyLimit = Math.min(PUBLIC_BODY_LIMIT, app.config.BODY_LIMIT)
    }
  })
  // Callback-style: an async hook costs a promise and a microtask on every request.
  app.addHook('preValidation', (request, _reply, done) => {
    const problem = findInputProblem(request.params, 'params', 2) ??
      findInputProblem(request.query, 'query', 3) ??
      findInputProblem(request.body, 'body', maxDepth)
    done(problem ? withDetails(new ValidationError(`${problem.field} ${problem.message}`), [problem]) : undefined)
  })
}, { name: 'input-guard', dependencies: ['config'] })
