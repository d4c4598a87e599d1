package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"
)

// ErrDatabase wraps every failure of the catalog database (unreachable,
// locked too long, a broken table): the service answers 503.
var ErrDatabase = errors.New("catalog database unavailable")

// DefaultTable is the name of the products table.
const DefaultTable = "statelab_products"

// DBConfig says where the products live: SQLitePath or PostgresURL, not
// both.
type DBConfig struct {
	// SQLitePath is an SQLite database file; replicas on one machine share
	// it.
	SQLitePath string
	// PostgresURL is a PostgreSQL connection URL; replicas anywhere share it.
	PostgresURL string
	// PostgresSchema is the schema of the table; empty means "public". It
	// is created if missing.
	PostgresSchema string
}

// DB is a Source reading a products table in SQLite or PostgreSQL. Open
// creates and seeds the table; after that DB only reads, so any number of
// replicas can share one database. It is safe for concurrent use.
type DB struct {
	db       *sql.DB
	postgres bool
	table    string // quoted, schema-qualified
	kind     string
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// Open opens the database cfg names, creates the products table if it is
// missing and seeds it from New if it holds fewer than Size products. Many
// replicas may Open one database at once: the creation and seeding run
// under the database's write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: a
// transaction-scoped advisory lock), and insert only missing SKUs.
func Open(ctx context.Context, cfg DBConfig) (*DB, error) {
	d := &DB{}
	var err error
	switch {
	case cfg.SQLitePath != "" && cfg.PostgresURL != "":
		return nil, errors.New("catalog: give SQLitePath or PostgresURL, not both")
	case cfg.SQLitePath != "":
		d.kind, d.table = "sqlite", `"`+DefaultTable+`"`
		dsn := "file:" + cfg.SQLitePath + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate"
		d.db, err = sql.Open("sqlite", dsn)
	case cfg.PostgresURL != "":
		schema := cfg.PostgresSchema
		if schema == "" {
			schema = "public"
		}
		if !identRE.MatchString(schema) {
			return nil, fmt.Errorf("catalog: invalid PostgreSQL schema %q", schema)
		}
		d.kind, d.postgres = "postgres", true
		d.table = pgx.Identifier{schema, DefaultTable}.Sanitize()
		d.db, err = sql.Open("pgx", cfg.PostgresURL)
		if err == nil {
			err = d.seed(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize())
		}
	default:
		return nil, errors.New("catalog: no database: give SQLitePath or PostgresURL")
	}
	if err == nil && !d.postgres {
		err = d.seed(ctx, "")
	}
	if err != nil {
		if d.db != nil {
			d.db.Close()
		}
		return nil, fmt.Errorf("catalog: open %s: %w: %w", d.kind, ErrDatabase, err)
	}
	d.db.SetMaxOpenConns(16)
	d.db.SetMaxIdleConns(16)
	d.db.SetConnMaxIdleTime(time.Minute)
	return d, nil
}

// Kind returns "sqlite" or "postgres".
func (d *DB) Kind() string { return d.kind }

// Close closes the database.
func (d *DB) Close() error { return d.db.Close() }

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error {
	if err := d.db.PingContext(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrDatabase, err)
	}
	return nil
}

// seed creates the table (after the statement pre, if any) and inserts the
// generated products it lacks, in one transaction holding the write lock.
func (d *DB) seed(ctx context.Context, pre string) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if d.postgres {
		h := fnv.New64a()
		h.Write([]byte("statelab/catalog\x00" + d.table))
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(h.Sum64())); err != nil {
			return err
		}
	}
	stmts := []string{`CREATE TABLE IF NOT EXISTS ` + d.table + ` (
		sku TEXT PRIMARY KEY,
		name TEXT NOT NULL,
		price_cents BIGINT NOT NULL,
		search TEXT NOT NULL)`}
	if pre != "" {
		stmts = append([]string{pre}, stmts...)
	}
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+d.table).Scan(&n); err != nil {
		return err
	}
	if n < Size {
		if err := d.insertAll(ctx, tx); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// insertAll inserts every generated product the table lacks, in batches.
func (d *DB) insertAll(ctx context.Context, tx *sql.Tx) error {
	const batch = 200
	products := New().Products()
	for start := 0; start < len(products); start += batch {
		chunk := products[start:min(start+batch, len(products))]
		var sb strings.Builder
		sb.WriteString(`INSERT INTO ` + d.table + ` (sku, name, price_cents, search) VALUES `)
		args := make([]any, 0, 4*len(chunk))
		for i, p := range chunk {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("(?, ?, ?, ?)")
			args = append(args, p.SKU, p.Name, p.PriceCents, searchText(p))
		}
		sb.WriteString(` ON CONFLICT (sku) DO NOTHING`)
		if _, err := tx.ExecContext(ctx, d.bind(sb.String()), args...); err != nil {
			return err
		}
	}
	return nil
}

// searchText is what a query's words are matched against.
func searchText(p Product) string { return strings.ToLower(p.SKU + " " + p.Name) }

// bind rewrites ? placeholders as $1, $2… for PostgreSQL.
func (d *DB) bind(q string) string {
	if !d.postgres {
		return q
	}
	var sb strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			sb.WriteString("$" + strconv.Itoa(n))
			continue
		}
		sb.WriteRune(r)
	}
	return sb.String()
}

// Product implements Source.
func (d *DB) Product(ctx context.Context, sku string) (Product, error) {
	var p Product
	err := d.db.QueryRowContext(ctx, d.bind(`SELECT sku, name, price_cents FROM `+d.table+` WHERE sku = ?`), sku).
		Scan(&p.SKU, &p.Name, &p.PriceCents)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Product{}, fmt.Errorf("%w %q", ErrUnknownSKU, sku)
	case err != nil:
		return Product{}, d.fail(ctx, err)
	}
	return p, nil
}

// Page implements Source: every word of q.Text must occur in the product's
// lower-cased "sku name" (SQL LIKE with the wildcards escaped).
func (d *DB) Page(ctx context.Context, q Query) (Page, error) {
	if err := q.Validate(); err != nil {
		return Page{}, err
	}
	var where []string
	var args []any
	for _, w := range strings.Fields(strings.ToLower(q.Text)) {
		where = append(where, `search LIKE ? ESCAPE '\'`)
		args = append(args, "%"+likeEscaper.Replace(w)+"%")
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	page := Page{Products: []Product{}}
	if err := d.db.QueryRowContext(ctx, d.bind(`SELECT COUNT(*) FROM `+d.table+cond), args...).Scan(&page.Total); err != nil {
		return Page{}, d.fail(ctx, err)
	}
	if q.Offset >= page.Total {
		return page, nil
	}
	rows, err := d.db.QueryContext(ctx, d.bind(`SELECT sku, name, price_cents FROM `+d.table+cond+` ORDER BY sku LIMIT ? OFFSET ?`),
		append(args, q.Limit, q.Offset)...)
	if err != nil {
		return Page{}, d.fail(ctx, err)
	}
	defer rows.Close()
	for rows.Next() {
		var p Product
		if err := rows.Scan(&p.SKU, &p.Name, &p.PriceCents); err != nil {
			return Page{}, d.fail(ctx, err)
		}
		page.Products = append(page.Products, p)
	}
	if err := rows.Err(); err != nil {
		return Page{}, d.fail(ctx, err)
	}
	return page, nil
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// fail wraps a database error: the caller's own cancellation stays a
// context error, anything else is ErrDatabase.
func (d *DB) fail(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return ctx.Err()
	}
	return fmt.Errorf("%w: %w", ErrDatabase, err)
}
