// Re-checks the credential behind a caller that was stored earlier — a stream ticket carries the caller it
// was issued to, and it starts or resumes a stream later, without the credential. The caller is refused
// when that credential has expired (token exp, key expiry), its API key was revoked or has expired, or its
// user account was deleted. A store that cannot answer gives 503, not a pass.
import { UnauthorizedError } from '../errors.js'
import type { ApiKeyStore } from './api-keys.js'
import { storeUnavailable } from './credentials.js'
import type { Caller } from './roles.js'
import type { UserStore } from './users.js'

export interface CallerCheckDeps {
  apiKeys: Pick<ApiKeyStore, 'isActive'>
  users: Pick<UserStore, 'exists'>
}

/** Resolves when the caller's credential is still valid; throws 401 when it is not. */
export type CallerCheck = (caller: Caller, now?: number) => Promise<void>

export function createCallerCheck (deps: CallerCheckDeps): CallerCheck {
  async function stillThere (caller: Caller): Promise<boolean> {
    try {
      if (caller.kind === 'api-key') return caller.keyId !== undefined && await deps.apiKeys.isActive(caller.keyId)
      if (caller.kind === 'user') return await deps.users.exists(caller.id.slice('user:'.length))
      return true // Supabase accounts live in Supabase: their token's exp is what we can check
    } catch (err) {
      throw storeUnavailable(err, 'The credential behind this ticket')
    }
  }

  return async (caller, now = Date.now()) => {
    if (caller.expiresAt !== undefined && caller.expiresAt <= now) {
      throw new UnauthorizedError(
        'The credential this ticket was issued to has expired; authenticate again and get a new ticket'
      )
    }
    if (!await stillThere(caller)) {
      const what = caller.kind === 'api-key' ? 'API key' : 'account'
      throw new UnauthorizedError(`The ${what} this ticket was issued to was revoked, has expired or no longer exists`)
    }
  }
}
