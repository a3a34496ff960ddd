<?php

declare(strict_types=1);

namespace Defer;

use DateTimeInterface;
use DateTimeZone;
use Defer\Exception\AuthenticationException;
use Defer\Exception\ConflictException;
use Defer\Exception\ConnectionException;
use Defer\Exception\DeferException;
use Defer\Exception\DrainingException;
use Defer\Exception\NotFoundException;
use Defer\Exception\ServerException;
use Defer\Exception\StorageFullException;
use Defer\Exception\TimeoutException;
use Defer\Exception\TooLargeException;
use Defer\Exception\ValidationException;
use Defer\Http\Connection;
use Defer\Http\Response;
use InvalidArgumentException;

/**
 * Client for deferd's HTTP/JSON API (docs/http-api.md).
 *
 *     $defer = new Defer\Client('http://127.0.0.1:11380');
 *     $task = $defer->dispatch('mail', ['to' => 'ana@example.org'], ['delay' => 60]);
 *
 * One Client keeps one connection open and reuses it for every call, so a
 * web request that dispatches many tasks pays for one TCP connect. Every call
 * is bounded by the timeout option; no call waits longer. Failures are typed
 * exceptions under Defer\Exception, each carrying the server's own message.
 *
 * A Client is not meant to be shared between processes: after a fork the
 * child opens its own connection.
 */
final class Client
{
    public const VERSION = '0.1.0';
    public const DEFAULT_URL = 'http://127.0.0.1:11380';
    /** Most tasks the server accepts in one batch request. */
    public const BATCH_MAX = 10000;
    private const DEFAULT_TIMEOUT = 5.0;
    /** The server's default --http-max-body. */
    private const DEFAULT_MAX_BODY = 16777216;
    private const CONFIG = ['url', 'token', 'timeout', 'connect_timeout', 'max_body'];
    private const JSON_OUT = JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE
        | JSON_PRESERVE_ZERO_FRACTION;

    private Connection $http;
    private readonly string $basePath;
    private readonly ?string $token;
    private readonly float $timeout;
    private readonly int $maxBody;

    /**
     * @param string|array{
     *     url?: string,
     *     token?: ?string,
     *     timeout?: int|float,
     *     connect_timeout?: int|float,
     *     max_body?: int,
     * } $config
     *        The base URL, or options:
     *        - url: base URL of the API (default http://127.0.0.1:11380); a path
     *          is kept as a prefix, for a server behind a reverse proxy
     *        - token: sent as "Authorization: Bearer <token>" (deferd
     *          --http-token-file); a trailing line break is ignored, so the
     *          file's contents can be passed as they are
     *        - timeout: seconds a call may take in all, connecting included (default 5)
     *        - connect_timeout: seconds the TCP connect may take (default: timeout)
     *        - max_body: largest request body to send, in bytes: dispatchMany()
     *          splits its batches to stay under it. Set it to the server's
     *          --http-max-body when that is not the default 16 MiB.
     *
     * @throws InvalidArgumentException on an unknown option or a bad value
     */
    public function __construct(string|array $config = self::DEFAULT_URL)
    {
        if (is_string($config)) {
            $config = ['url' => $config];
        }
        $unknown = array_diff(array_keys($config), self::CONFIG);
        if ($unknown !== []) {
            throw new InvalidArgumentException(sprintf(
                'unknown option "%s" (known: %s)',
                implode('", "', $unknown),
                implode(', ', self::CONFIG),
            ));
        }

        $url = $config['url'] ?? self::DEFAULT_URL;
        $parts = is_string($url) ? parse_url($url) : false;
        if ($parts === false || !isset($parts['scheme'], $parts['host'])) {
            throw new InvalidArgumentException(sprintf(
                'url must be like "http://127.0.0.1:11380", not %s',
                var_export($url, true),
            ));
        }
        if (strtolower($parts['scheme']) !== 'http') {
            throw new InvalidArgumentException(sprintf(
                'url: only http:// is supported, not %s:// (deferd serves plain HTTP)',
                $parts['scheme'],
            ));
        }
        if (isset($parts['query']) || isset($parts['fragment']) || isset($parts['user'])) {
            throw new InvalidArgumentException(
                'url must not have credentials, a query or a fragment (use the token option)',
            );
        }
        $port = $parts['port'] ?? 80;
        $this->basePath = rtrim($parts['path'] ?? '', '/');

        $this->timeout = self::positive($config, 'timeout', self::DEFAULT_TIMEOUT);
        $connectTimeout = self::positive($config, 'connect_timeout', $this->timeout);

        $maxBody = $config['max_body'] ?? self::DEFAULT_MAX_BODY;
        if (!is_int($maxBody) || $maxBody < 1024) {
            throw new InvalidArgumentException('max_body must be an integer of at least 1024 (bytes)');
        }
        $this->maxBody = $maxBody;

        $token = $config['token'] ?? null;
        if ($token !== null) {
            if (!is_string($token)) {
                throw new InvalidArgumentException('token must be a string');
            }
            $token = rtrim($token, "\r\n");
            if ($token === '' || preg_match('/[\x00-\x1f\x7f]/', $token) === 1) {
                throw new InvalidArgumentException('token must be one line of printable characters');
            }
        }
        $this->token = $token;

        $this->http = new Connection(
            $parts['host'],
            $port,
            $parts['host'] . ($port === 80 ? '' : ':' . $port),
            $connectTimeout,
        );
    }

    /** A clone gets a connection of its own. */
    public function __clone()
    {
        $this->http = clone $this->http;
    }

    // ---- enqueue ----------------------------------------------------------

    /**
     * Enqueues one task: POST /v1/queues/{queue}/tasks.
     *
     * The payload is sent as JSON; a beanstalk worker reserves its compact
     * JSON text. An empty PHP array is sent as [] - pass (object) [] or
     * new stdClass() for {}.
     *
     * Options (null means "not given", handy when building them):
     * - priority: int 0-4294967295, 0 most urgent (default 1024)
     * - delay: seconds (int or float) until the task is ready
     * - run_at: when it becomes ready: DateTimeInterface, Unix seconds, or an
     *   RFC 3339 string (instead of delay; a past time means now)
     * - ttr: seconds a worker may hold it (default 60)
     * - max_attempts: failed attempts before it is buried as failed (0: no limit)
     * - key: unique among the queue's unfinished tasks
     * - replace: bool; with a key held by another task, true changes that task
     *   in place (or supersedes it when a worker runs it); false (the default)
     *   returns it unchanged. The server's on_conflict, as a bool.
     * - raw: bool; the payload is a string of bytes, sent as payload_base64,
     *   and a worker reserves exactly those bytes
     * Any other option is passed to the server as it is, so a field newer than
     * this client works, and a misspelt one is refused by the server
     * (ValidationException, code unknown_field) rather than ignored.
     *
     * Look at the returned task's deduplicated, replaced and superseded to
     * learn what happened with a key.
     *
     * @param array<string, mixed> $options
     *
     * @throws ValidationException  400: an option's value is not allowed
     * @throws TooLargeException    413: the payload is over the server's task size (-z)
     * @throws DrainingException    503: the server refuses new tasks
     * @throws StorageFullException 507: the server's disk is full
     * @throws ConnectionException  no connection, or it broke before the answer
     *                              (TimeoutException: no answer within the timeout)
     * @throws DeferException       any other failure
     * @throws InvalidArgumentException the payload cannot be JSON, or an option has the wrong PHP type
     */
    public function dispatch(string $queue, mixed $payload, array $options = []): Task
    {
        $body = $this->json(self::taskSpec($payload, $options), 'the task');
        $what = 'dispatch to ' . $queue;
        $response = $this->send('POST', '/v1/queues/' . self::segment($queue) . '/tasks', $body, false);

        return $this->answer($response, $what, static fn (array $data): Task => Task::fromArray($data));
    }

    /**
     * Enqueues many tasks with as few requests as possible:
     * POST /v1/queues/{queue}/tasks/batch, at most 10,000 tasks (and at most
     * max_body bytes) a request.
     *
     * Each item is a payload, or an array ['payload' => ..., option => ...]
     * with any of dispatch()'s options; $defaults apply to every item unless
     * the item gives the option itself (null in an item removes a default).
     * An array item is read as a payload unless it has a 'payload' key.
     *
     * One request is all or nothing: if any task in it is refused, none of it
     * is enqueued, and the ValidationException names the first bad task. When
     * the items need more than one request, the requests before a refused one
     * stay enqueued; the exception's message says how many tasks that was.
     * Give the tasks keys to make sending the whole list again harmless.
     * Items are encoded as the loop goes, so a generator of any length needs
     * memory for one request only; an item that cannot be encoded throws
     * InvalidArgumentException before its request is sent.
     *
     * @param iterable<mixed>      $items
     * @param array<string, mixed> $defaults
     *
     * @return list<Task> one per item, in order
     *
     * @throws DeferException as dispatch()
     * @throws InvalidArgumentException as dispatch()
     */
    public function dispatchMany(string $queue, iterable $items, array $defaults = []): array
    {
        $path = '/v1/queues/' . self::segment($queue) . '/tasks/batch';
        $tasks = [];
        $pending = [];
        $bytes = 0;
        $first = 0; // index of the first pending item
        $n = 0;
        foreach ($items as $item) {
            if (is_array($item) && array_key_exists('payload', $item)) {
                $payload = $item['payload'];
                unset($item['payload']);
                $options = array_merge($defaults, $item);
            } else {
                $payload = $item;
                $options = $defaults;
            }
            try {
                $json = $this->json(self::taskSpec($payload, $options), 'the task');
            } catch (InvalidArgumentException $e) {
                throw new InvalidArgumentException(sprintf(
                    'item %d: %s%s',
                    $n,
                    $e->getMessage(),
                    $tasks === [] ? '' : sprintf(' (the %d items before were enqueued by earlier requests)', count($tasks)),
                ), 0, $e);
            }
            // {"tasks":[ ... ]} plus a comma between tasks.
            $full = count($pending) === self::BATCH_MAX || $bytes + strlen($json) + 12 > $this->maxBody;
            if ($pending !== [] && $full) {
                array_push($tasks, ...$this->sendBatch($queue, $path, $pending, $first, count($tasks)));
                $first = $n;
                $pending = [];
                $bytes = 0;
            }
            $pending[] = $json;
            $bytes += strlen($json) + 1;
            $n++;
        }
        if ($pending !== []) {
            array_push($tasks, ...$this->sendBatch($queue, $path, $pending, $first, count($tasks)));
        }

        return $tasks;
    }

    /**
     * @param list<string> $pending encoded tasks
     * @param int          $first   index of the first of them among the items
     * @param int          $done    tasks enqueued by earlier requests of this call
     *
     * @return list<Task>
     */
    private function sendBatch(string $queue, string $path, array $pending, int $first, int $done): array
    {
        $what = sprintf('dispatchMany to %s, items %d to %d', $queue, $first, $first + count($pending) - 1);
        try {
            $response = $this->send('POST', $path, '{"tasks":[' . implode(',', $pending) . ']}', false);

            return $this->answer($response, $what, static function (array $data) use ($pending): array {
                if (!isset($data['tasks']) || !is_array($data['tasks']) || count($data['tasks']) !== count($pending)) {
                    throw new \UnexpectedValueException(
                        sprintf('expected {"tasks": [...]} with %d tasks', count($pending)),
                    );
                }

                return self::taskList($data['tasks']);
            });
        } catch (DeferException $e) {
            if ($done === 0) {
                throw $e;
            }
            // Same class, so callers catch it as usual, told what already happened.
            $class = $e::class;
            throw new $class(
                $e->getMessage() . sprintf(' (the %d items before were enqueued by earlier requests)', $done),
                $e->getStatus(),
                $e->getErrorCode(),
                $e->getServerMessage(),
                $e,
            );
        }
    }

    // ---- tasks ------------------------------------------------------------

    /**
     * A task, live or finished (within the server's history): GET /v1/tasks/{id}.
     *
     * @return Task|null null when the server knows no such task (never
     *                   created, or finished longer ago than its history keeps)
     *
     * @throws DeferException
     */
    public function task(int $id): ?Task
    {
        $what = 'task ' . $id;
        $response = $this->send('GET', '/v1/tasks/' . self::id($id), null, true);
        if (self::isNotFound($response)) {
            return null;
        }

        return $this->answer($response, $what, static fn (array $data): Task => Task::fromArray($data));
    }

    /**
     * Cancels a task that no worker holds: DELETE /v1/tasks/{id}. Cancelling
     * a cancelled task answers the same again.
     *
     * @return Task the task, now cancelled
     *
     * @throws NotFoundException  no such task
     * @throws ConflictException  getErrorCode() "task_running": a worker holds it;
     *                            "finished": it is done or failed
     * @throws DeferException
     */
    public function cancel(int $id): Task
    {
        $what = 'cancel task ' . $id;
        $response = $this->send('DELETE', '/v1/tasks/' . self::id($id), null, true);

        return $this->answer($response, $what, static fn (array $data): Task => Task::fromArray($data));
    }

    /**
     * Cancels the unfinished task holding a key: DELETE /v1/queues/{queue}/keys/{key}.
     *
     * @return Task|null the cancelled task, or null when no unfinished task holds the key
     *
     * @throws ConflictException "task_running": a worker holds that task
     * @throws DeferException
     */
    public function cancelKey(string $queue, string $key): ?Task
    {
        $what = sprintf('cancel key %s in %s', $key, $queue);
        // Not sent twice: a second try could cancel a newer holder of the key.
        $path = '/v1/queues/' . self::segment($queue) . '/keys/' . self::segment($key);
        $response = $this->send('DELETE', $path, null, false);
        if (self::isNotFound($response)) {
            return null;
        }

        return $this->answer($response, $what, static fn (array $data): Task => Task::fromArray($data));
    }

    /**
     * The tasks of one state in a queue, in id order, fetched a page at a
     * time as the loop goes on: GET /v1/queues/{queue}/tasks.
     *
     * @param TaskState|string $state ready, delayed, reserved, buried or failed
     * @param bool             $withPayload include payloads (bigger answers)
     * @param int              $pageSize    tasks per request, 1 to 1000
     *
     * @return \Generator<int, Task>
     *
     * @throws DeferException while iterating
     */
    public function tasks(
        string $queue,
        TaskState|string $state,
        bool $withPayload = false,
        int $pageSize = 100,
    ): \Generator {
        $state = $state instanceof TaskState ? $state->value : $state;
        $after = null;
        do {
            $query = ['state' => $state, 'limit' => $pageSize];
            if ($withPayload) {
                $query['payload'] = 1;
            }
            if ($after !== null) {
                $query['after'] = $after;
            }
            $what = sprintf('tasks of %s (%s)', $queue, $state);
            $path = '/v1/queues/' . self::segment($queue) . '/tasks?'
                . http_build_query($query, '', '&', PHP_QUERY_RFC3986);
            $response = $this->send('GET', $path, null, true);
            if (self::isNotFound($response)) {
                return; // an empty queue does not exist
            }
            [$page, $after] = $this->answer($response, $what, static function (array $data): array {
                if (!isset($data['tasks']) || !is_array($data['tasks']) || !array_key_exists('next', $data)
                    || !($data['next'] === null || is_int($data['next']))) {
                    throw new \UnexpectedValueException('expected {"tasks": [...], "next": ...}');
                }

                return [self::taskList($data['tasks']), $data['next']];
            });
            foreach ($page as $task) {
                yield $task; // keys run on across pages, so iterator_to_array() keeps every task
            }
        } while ($after !== null);
    }

    // ---- queues -----------------------------------------------------------

    /**
     * Every queue: GET /v1/queues.
     *
     * @return array<string, Queue> keyed by queue name, in the server's order
     *
     * @throws DeferException
     */
    public function queues(): array
    {
        $response = $this->send('GET', '/v1/queues', null, true);

        return $this->answer($response, 'queues', static function (array $data): array {
            if (!isset($data['queues']) || !is_array($data['queues'])) {
                throw new \UnexpectedValueException('expected {"queues": [...]}');
            }
            $queues = [];
            foreach ($data['queues'] as $q) {
                $queue = Queue::fromArray(self::object($q, 'queue'));
                $queues[$queue->name] = $queue;
            }

            return $queues;
        });
    }

    /**
     * One queue: GET /v1/queues/{queue}.
     *
     * @return Queue|null null when the queue does not exist (it holds no tasks)
     *
     * @throws DeferException
     */
    public function queue(string $name): ?Queue
    {
        $what = 'queue ' . $name;
        $response = $this->send('GET', '/v1/queues/' . self::segment($name), null, true);
        if (self::isNotFound($response)) {
            return null;
        }

        return $this->answer($response, $what, static fn (array $data): Queue => Queue::fromArray($data));
    }

    /**
     * Stops workers from reserving the queue's tasks, for $seconds or (null)
     * until resume(): POST /v1/queues/{queue}/pause. Enqueueing goes on.
     *
     * @throws NotFoundException the queue does not exist (it holds no tasks)
     * @throws DeferException
     */
    public function pause(string $queue, ?int $seconds = null): Queue
    {
        $what = 'pause ' . $queue;
        $body = $seconds === null ? '' : $this->json(['seconds' => $seconds], 'the request');
        $response = $this->send('POST', '/v1/queues/' . self::segment($queue) . '/pause', $body, false);

        return $this->answer($response, $what, static fn (array $data): Queue => Queue::fromArray($data));
    }

    /**
     * Ends a pause: POST /v1/queues/{queue}/resume.
     *
     * @throws NotFoundException the queue does not exist
     * @throws DeferException
     */
    public function resume(string $queue): Queue
    {
        $what = 'resume ' . $queue;
        $response = $this->send('POST', '/v1/queues/' . self::segment($queue) . '/resume', '', false);

        return $this->answer($response, $what, static fn (array $data): Queue => Queue::fromArray($data));
    }

    /**
     * Moves buried tasks (failed ones included) back to ready, or, when none
     * is buried, delayed ones: POST /v1/queues/{queue}/kick.
     *
     * @param int|null $bound at most this many (null: all)
     *
     * @return int how many tasks were kicked
     *
     * @throws NotFoundException the queue does not exist
     * @throws DeferException
     */
    public function kick(string $queue, ?int $bound = null): int
    {
        $what = 'kick ' . $queue;
        $body = $bound === null ? '' : $this->json(['bound' => $bound], 'the request');
        $response = $this->send('POST', '/v1/queues/' . self::segment($queue) . '/kick', $body, false);

        return $this->answer($response, $what, static function (array $data): int {
            if (!isset($data['kicked']) || !is_int($data['kicked'])) {
                throw new \UnexpectedValueException('expected {"kicked": n}');
            }

            return $data['kicked'];
        });
    }

    // ---- server -----------------------------------------------------------

    /**
     * The server's counters: GET /v1/stats, decoded as it is (see
     * docs/http-api.md; "connections", "tasks", "log", ...).
     *
     * @return array<string, mixed>
     *
     * @throws DeferException
     */
    public function stats(): array
    {
        return $this->result($this->send('GET', '/v1/stats', null, true), 'stats');
    }

    /**
     * GET /healthz: "ok", or "draining" when the server refuses new tasks
     * (SIGUSR1). Needs no token. A server that cannot be reached throws
     * ConnectionException.
     *
     * @throws DeferException
     */
    public function health(): string
    {
        $response = $this->send('GET', '/healthz', null, true);
        $data = json_decode($response->body, true);
        if (($response->status === 200 || $response->status === 503)
            && is_array($data) && is_string($data['status'] ?? null)) {
            return $data['status'];
        }

        throw $this->failure($response, 'health');
    }

    /** Closes the connection now rather than when the Client is destroyed. The next call reconnects. */
    public function close(): void
    {
        $this->http->close();
    }

    /** TCP connections opened so far by this client: 1 after any number of calls, if all went well. */
    public function connectCount(): int
    {
        return $this->http->connectCount();
    }

    // ---- the request ------------------------------------------------------

    /**
     * @param string|null $body JSON text; null sends no body (GET, DELETE)
     * @param bool $repeatable  sending it twice does no harm, so it may be
     *                          sent again on a fresh connection when a kept-alive
     *                          one turns out closed after it was written
     */
    private function send(string $method, string $path, ?string $body, bool $repeatable): Response
    {
        $headers = [
            'User-Agent' => 'defer-php/' . self::VERSION,
            'Accept' => 'application/json',
        ];
        if ($this->token !== null) {
            $headers['Authorization'] = 'Bearer ' . $this->token;
        }
        if ($body !== null && $body !== '') {
            $headers['Content-Type'] = 'application/json';
        }

        return $this->http->request($method, $this->basePath . $path, $headers, $body, $this->timeout, $repeatable);
    }

    /**
     * The decoded JSON object of a 2xx answer; any other answer becomes its exception.
     *
     * @return array<mixed>
     */
    private function result(Response $response, string $what): array
    {
        if ($response->status < 200 || $response->status > 299) {
            throw $this->failure($response, $what);
        }
        try {
            $data = json_decode($response->body, true, 512, JSON_THROW_ON_ERROR);
        } catch (\JsonException $e) {
            throw new ServerException(sprintf(
                '%s: %d answer is not JSON (%s): %s',
                $what,
                $response->status,
                $e->getMessage(),
                self::excerpt($response->body),
            ), $response->status, null, null, $e);
        }
        if (!is_array($data)) {
            throw new ServerException(
                sprintf('%s: expected a JSON object, got %s', $what, self::excerpt($response->body)),
                $response->status,
            );
        }

        return $data;
    }

    /**
     * The parsed result of a 2xx answer, any other answer becoming its
     * exception. A parser's \UnexpectedValueException (a field missing or of
     * the wrong type) becomes a ServerException: the answer was not deferd's.
     *
     * @template T
     *
     * @param callable(array<mixed>): T $parser
     *
     * @return T
     */
    private function answer(Response $response, string $what, callable $parser): mixed
    {
        $data = $this->result($response, $what);
        try {
            return $parser($data);
        } catch (\UnexpectedValueException $e) {
            throw new ServerException(
                sprintf('%s: unexpected answer: %s', $what, $e->getMessage()),
                $response->status,
                null,
                null,
                $e,
            );
        }
    }

    /** The exception for an answer that is not a success. */
    private function failure(Response $response, string $what): DeferException
    {
        [$code, $message] = self::errorOf($response);
        $status = $response->status;
        $text = sprintf(
            '%s: %d %s: %s',
            $what,
            $status,
            $code ?? $response->reason,
            $message ?? 'unexpected answer: ' . self::excerpt($response->body),
        );

        return match (true) {
            $status === 400 => new ValidationException($text, $status, $code, $message),
            $status === 401 => new AuthenticationException($text, $status, $code, $message),
            $status === 404 => new NotFoundException($text, $status, $code, $message),
            $status === 409 => new ConflictException($text, $status, $code, $message),
            $status === 413 => new TooLargeException($text, $status, $code, $message),
            $status === 503 && $code === 'draining' => new DrainingException($text, $status, $code, $message),
            $status === 507 => new StorageFullException($text, $status, $code, $message),
            default => new ServerException($text, $status, $code, $message),
        };
    }

    /**
     * The code and message of deferd's error body {"error": {"code", "message"}}.
     *
     * @return array{?string, ?string}
     */
    private static function errorOf(Response $response): array
    {
        $data = json_decode($response->body, true);
        $error = is_array($data) ? ($data['error'] ?? null) : null;
        if (is_array($error) && is_string($error['code'] ?? null) && is_string($error['message'] ?? null)) {
            return [$error['code'], $error['message']];
        }

        return [null, null];
    }

    /**
     * A 404 that means "no such thing", as opposed to "no such endpoint"
     * (a wrong URL prefix), which must not pass for an empty answer.
     */
    private static function isNotFound(Response $response): bool
    {
        if ($response->status !== 404) {
            return false;
        }
        [$code, $message] = self::errorOf($response);

        return $code === 'not_found' && !str_starts_with((string) $message, 'no such endpoint');
    }

    // ---- encoding ---------------------------------------------------------

    /**
     * The JSON fields of one task from a payload and dispatch() options.
     *
     * @param array<mixed> $options
     *
     * @return array<string, mixed>
     */
    private static function taskSpec(mixed $payload, array $options): array
    {
        $spec = [];
        $raw = false;
        $replace = null;
        foreach ($options as $name => $value) {
            if (!is_string($name)) {
                throw new InvalidArgumentException(
                    'options must be an array with string keys, such as [\'delay\' => 60]',
                );
            }
            if ($value === null) {
                continue;
            }
            switch ($name) {
                case 'payload':
                case 'payload_base64':
                    throw new InvalidArgumentException(sprintf(
                        '"%s" is not an option: the payload is an argument (and [\'raw\' => true] sends bytes)',
                        $name,
                    ));
                case 'raw':
                case 'replace':
                    if (!is_bool($value)) {
                        throw new InvalidArgumentException(sprintf('option %s must be true or false', $name));
                    }
                    if ($name === 'raw') {
                        $raw = $value;
                    } else {
                        $replace = $value;
                    }
                    break;
                case 'run_at':
                    $spec['run_at'] = self::time($value);
                    break;
                default:
                    // priority, delay, ttr, max_attempts, key, on_conflict, and
                    // whatever a newer server knows: the server checks them.
                    $spec[$name] = $value;
            }
        }
        if ($replace !== null) {
            if (isset($spec['on_conflict'])) {
                throw new InvalidArgumentException('give replace or on_conflict, not both');
            }
            // "keep" is the server's default, and it refuses on_conflict without a key.
            if ($replace || isset($spec['key'])) {
                $spec['on_conflict'] = $replace ? 'replace' : 'keep';
            }
        }
        if ($raw) {
            if (!is_string($payload)) {
                throw new InvalidArgumentException(sprintf(
                    'with raw => true the payload must be a string of bytes, not %s',
                    get_debug_type($payload),
                ));
            }

            return ['payload_base64' => base64_encode($payload)] + $spec;
        }

        return ['payload' => $payload] + $spec;
    }

    /** A run_at value as the server takes it: RFC 3339 (UTC, milliseconds) or Unix seconds. */
    private static function time(mixed $value): string|int|float
    {
        if ($value instanceof DateTimeInterface) {
            return \DateTimeImmutable::createFromInterface($value)
                ->setTimezone(new DateTimeZone('UTC'))
                ->format('Y-m-d\TH:i:s.v\Z');
        }
        if (is_int($value) || is_float($value) || is_string($value)) {
            return $value;
        }

        throw new InvalidArgumentException(sprintf(
            'run_at must be a DateTimeInterface, Unix seconds or an RFC 3339 string, not %s',
            get_debug_type($value),
        ));
    }

    /** @param array<mixed> $value */
    private function json(array $value, string $what): string
    {
        try {
            return json_encode($value, self::JSON_OUT);
        } catch (\JsonException $e) {
            throw new InvalidArgumentException(sprintf(
                '%s cannot be encoded as JSON: %s (send bytes with [\'raw\' => true])',
                $what,
                $e->getMessage(),
            ), 0, $e);
        }
    }

    /** A queue name or key as one path segment ("/" becomes %2F). */
    private static function segment(string $name): string
    {
        return rawurlencode($name);
    }

    private static function id(int $id): string
    {
        if ($id < 1) {
            throw new InvalidArgumentException(sprintf('task ids are positive integers, not %d', $id));
        }

        return (string) $id;
    }

    /**
     * @param array<mixed> $tasks decoded task objects
     *
     * @return list<Task>
     */
    private static function taskList(array $tasks): array
    {
        return array_map(static fn (mixed $t): Task => Task::fromArray(self::object($t, 'task')), array_values($tasks));
    }

    /** @return array<mixed> */
    private static function object(mixed $value, string $what): array
    {
        if (!is_array($value)) {
            throw new \UnexpectedValueException(sprintf('a %s should be a JSON object', $what));
        }

        return $value;
    }

    /**
     * @param array<string, mixed> $config
     */
    private static function positive(array $config, string $name, float $default): float
    {
        $value = $config[$name] ?? $default;
        if ((!is_int($value) && !is_float($value)) || !is_finite((float) $value) || $value <= 0) {
            throw new InvalidArgumentException(sprintf('%s must be a positive number of seconds', $name));
        }

        return (float) $value;
    }

    private static function excerpt(string $bytes): string
    {
        $cut = substr($bytes, 0, 200);

        return json_encode($cut, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE)
            . (strlen($bytes) > 200 ? '...' : '');
    }
}
