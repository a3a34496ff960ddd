<?php

declare(strict_types=1);

namespace Defer\Http;

/**
 * One HTTP answer, body complete.
 *
 * @internal
 */
final class Response
{
    /**
     * @param array<string, string> $headers lower-case names; a repeated header's values joined with ", "
     */
    public function __construct(
        public readonly int $status,
        public readonly string $reason,
        public readonly array $headers,
        public readonly string $body,
    ) {
    }

    public function header(string $name): ?string
    {
        return $this->headers[strtolower($name)] ?? null;
    }
}
