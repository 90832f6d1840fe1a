// Users who log in with email and password (POST /api/auth/login). Emails are stored lower-cased and
// unique; passwords only as scrypt hashes. ensureAdmin applies ADMIN_EMAIL/ADMIN_PASSWORD at every start.
import type { Queryable, Row } from '../store/database.js'
import { PasswordHasher } from './passwords.js'
import type { Role } from './roles.js'
import { roleOf, timeOf } from './rows.js'

export interface UserRecord {
  id: string
  email: string
  role: Role
  createdAt: string
}

const normalize = (email: string): string => email.trim().toLowerCase()
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

function toRecord (row: Row): UserRecord {
  return {
    id: String(row.id),
    email: String(row.email),
    role: roleOf(row.role),
    createdAt: new Date(timeOf(row.created_at)).toISOString()
  }
}

export class UserStore {
  /** `hasher` holds the cost of new scrypt hashes (PASSWORD_HASH_COST). */
  constructor (private readonly db: Queryable, private readonly hasher = new PasswordHasher()) {}

  /** Creates a user; null when the email is taken. */
  async create (input: { email: string, password: string, role: Role }): Promise<UserRecord | null> {
    const hash = await this.hasher.hash(input.password)
    const [row] = await this.db.query(
      'INSERT INTO users (email, password_hash, role) VALUES ($1, $2, $3) ' +
        'ON CONFLICT DO NOTHING RETURNING id, email, role, created_at',
      [normalize(input.email), hash, input.role]
    )
    return row ? toRecord(row) : null
  }

  async findById (id: string): Promise<UserRecord | null> {
    const [row] = await this.db.query('SELECT id, email, role, created_at FROM users WHERE id = $1', [id])
    return row ? toRecord(row) : null
  }

  /** True while a user with this id exists. */
  async exists (id: string): Promise<boolean> {
    if (!UUID.test(id)) return false
    return (await this.db.query('SELECT 1 FROM users WHERE id = $1', [id])).length > 0
  }

  /** The user when email and password match; null otherwise, in about the same time either way. */
  async verifyCredentials (email: string, password: string): Promise<UserRecord | null> {
    const [row] = await this.db.query(
      'SELECT id, email, role, created_at, password_hash FROM users WHERE lower(email) = $1', [normalize(email)])
    if (!row) return this.hasher.verifyAgainstDummy(password).then(() => null)
    const stored = String(row.password_hash)
    if (!await this.hasher.verify(password, stored)) return null
    if (this.hasher.needsRehash(stored)) {
      // The cost changed since this hash was made: upgrade it now that the password is at hand.
      await this.db.query('UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1', [
        row.id,
        await this.hasher.hash(password)
      ])
    }
    return toRecord(row)
  }

  /**
   * Makes sure the configured admin exists, has the admin role and the configured password. Idempotent and
   * safe when several replicas start together. Changing ADMIN_PASSWORD and restarting rotates the password.
   */
  async ensureAdmin (email: string, password: string): Promise<'created' | 'updated' | 'unchanged'> {
    const find = () =>
      this.db.query('SELECT id, role, password_hash FROM users WHERE lower(email) = $1', [normalize(email)])
    let [row] = await find()
    if (!row) {
      if (await this.create({ email, password, role: 'admin' })) return 'created'
      ;[row] = await find() // another replica created it meanwhile
    }
    const passwordOk = await this.hasher.verify(password, String(row.password_hash))
    if (passwordOk && row.role === 'admin') return 'unchanged'
    const hash = passwordOk ? String(row.password_hash) : await this.hasher.hash(password)
    await this.db.query("UPDATE users SET role = 'admin', password_hash = $2, updated_at = now() WHERE id = $1", [
      row.id,
      hash
    ])
    return 'updated'
  }
}
