<?php

declare(strict_types=1);

namespace Defer;

/**
 * The task deferd hands to a push script (docs/push.md, "The contract"):
 * its id, queue, attempt number and payload, read from what the target
 * passes - FastCGI or HTTP headers and the request body, or a command's
 * environment and stdin.
 *
 * Built by Handler, which reads the running script's own request; the two
 * constructors below are pure (arrays and strings in, a task out), so that
 * they can be tested without a web server, and a handler function can be
 * tested with a task made by hand:
 *
 *     $task = new PushedTask(1, 'mail', 1, ['to' => 'ana@example.org'], '{"to":"ana@example.org"}', true);
 */
final class PushedTask
{
    /** Where fromServer() finds the id, queue and attempt, and what they are called in messages. */
    private const HEADERS = [
        'HTTP_X_DEFER_TASK_ID' => 'the X-Defer-Task-Id header',
        'HTTP_X_DEFER_QUEUE' => 'the X-Defer-Queue header',
        'HTTP_X_DEFER_ATTEMPT' => 'the X-Defer-Attempt header',
    ];
    /** The same for fromEnvironment(). */
    private const VARIABLES = [
        'DEFER_TASK_ID' => 'DEFER_TASK_ID',
        'DEFER_QUEUE' => 'DEFER_QUEUE',
        'DEFER_ATTEMPT' => 'DEFER_ATTEMPT',
    ];

    /**
     * @param mixed $payload the JSON payload decoded (objects as associative
     *                       arrays) when $isJson, else the raw bytes
     */
    public function __construct(
        public readonly int $id,
        public readonly string $queue,
        /** 1 for the first attempt, 2 for the first retry, ... */
        public readonly int $attempt,
        public readonly mixed $payload,
        /** The payload exactly as deferd sent it. */
        public readonly string $rawPayload,
        /** True for a JSON payload; false for bytes (payload_base64, or a put over the beanstalk protocol). */
        public readonly bool $isJson,
    ) {
    }

    /**
     * A task from a web request as php-fpm (fastcgi target) or a web server
     * (http target) presents it: $_SERVER and php://input.
     *
     * @param array<mixed> $server $_SERVER
     *
     * @throws \InvalidArgumentException the request is not one of deferd's:
     *                                   an X-Defer-* header is missing or malformed
     * @throws \JsonException            the payload type is JSON but the body does not parse
     */
    public static function fromServer(array $server, string $body): self
    {
        $contentType = self::text($server, 'CONTENT_TYPE', 'CONTENT_TYPE')
            ?? self::text($server, 'HTTP_CONTENT_TYPE', 'the Content-Type header') ?? '';
        // "application/json", maybe with parameters; anything else is bytes.
        $mediaType = strtolower(trim(explode(';', $contentType, 2)[0]));

        return self::build($server, self::HEADERS, $mediaType === 'application/json', $body);
    }

    /**
     * A task from a command's environment and stdin, as the exec target
     * passes it: DEFER_TASK_ID, DEFER_QUEUE, DEFER_ATTEMPT, DEFER_PAYLOAD_TYPE
     * (json or bytes; bytes when unset).
     *
     * @param array<mixed> $env getenv()
     *
     * @throws \InvalidArgumentException a DEFER_* variable is missing or malformed
     * @throws \JsonException            DEFER_PAYLOAD_TYPE is json but stdin does not parse
     */
    public static function fromEnvironment(array $env, string $stdin): self
    {
        $type = self::text($env, 'DEFER_PAYLOAD_TYPE', 'DEFER_PAYLOAD_TYPE') ?? 'bytes';
        if ($type !== 'json' && $type !== 'bytes') {
            throw new \InvalidArgumentException(sprintf('DEFER_PAYLOAD_TYPE must be json or bytes, not %s', self::quote($type)));
        }

        return self::build($env, self::VARIABLES, $type === 'json', $stdin);
    }

    /**
     * @param array<mixed>          $from   $_SERVER or the environment
     * @param array<string, string> $fields the keys of the id, queue and attempt in $from, and their names
     */
    private static function build(array $from, array $fields, bool $isJson, string $body): self
    {
        [$idKey, $queueKey, $attemptKey] = array_keys($fields);
        $id = self::text($from, $idKey, $fields[$idKey]);
        if ($id === null) {
            throw new \InvalidArgumentException("not a task pushed by deferd: {$fields[$idKey]} is missing");
        }
        $id = self::positive($id, $fields[$idKey]);
        $queue = self::text($from, $queueKey, $fields[$queueKey]);
        if ($queue === null || $queue === '') {
            throw new \InvalidArgumentException("{$fields[$queueKey]} is missing or empty");
        }
        $attempt = self::text($from, $attemptKey, $fields[$attemptKey]);
        if ($attempt === null) {
            throw new \InvalidArgumentException("{$fields[$attemptKey]} is missing");
        }
        $attempt = self::positive($attempt, $fields[$attemptKey]);

        $payload = $body;
        if ($isJson) {
            try {
                $payload = json_decode($body, true, 512, JSON_THROW_ON_ERROR);
            } catch (\JsonException $e) {
                throw new \JsonException(
                    sprintf('the payload of task %d is not valid JSON: %s', $id, $e->getMessage()),
                    $e->getCode(),
                    $e,
                );
            }
        }

        return new self($id, $queue, $attempt, $payload, $body, $isJson);
    }

    /**
     * A string value of $from, or null when it is absent.
     *
     * @param array<mixed> $from
     */
    private static function text(array $from, string $key, string $name): ?string
    {
        $value = $from[$key] ?? null;
        if ($value !== null && !is_string($value)) {
            throw new \InvalidArgumentException("$name must be a string");
        }

        return $value;
    }

    private static function positive(string $value, string $name): int
    {
        // The round trip rejects numbers beyond PHP_INT_MAX, which (int) would clamp.
        if (preg_match('/^[1-9][0-9]*$/', $value) !== 1 || (string) (int) $value !== $value) {
            throw new \InvalidArgumentException(sprintf('%s must be a positive integer, not %s', $name, self::quote($value)));
        }

        return (int) $value;
    }

    /** A value for an error message: quoted, at most 40 bytes, no control characters. */
    private static function quote(string $value): string
    {
        $short = strlen($value) > 40 ? substr($value, 0, 40) . '...' : $value;

        return '"' . preg_replace('/[\x00-\x1f\x7f]/', '?', $short) . '"';
    }
}
