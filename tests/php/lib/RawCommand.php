<?php
// A command line sent as given, optionally with a body whose announced size
// (in the line) need not match: for the protocol's error paths.

declare(strict_types=1);

namespace Defer\PhpTests;

use Pheanstalk\Command\AbstractCommand;
use Pheanstalk\Contract\ResponseParserInterface;
use Pheanstalk\Exception;
use Pheanstalk\Response\ArrayResponse;

final class RawCommand extends AbstractCommand implements ResponseParserInterface
{
    /** @var string */
    private $line;
    /** @var string|null */
    private $body;

    public function __construct(string $line, ?string $body = null)
    {
        $this->line = $line;
        $this->body = $body;
    }

    public function getCommandLine(): string
    {
        return $this->line;
    }

    public function hasData(): bool
    {
        return $this->body !== null;
    }

    public function getData(): string
    {
        return (string)$this->body;
    }

    public function getDataLength(): int
    {
        return strlen((string)$this->body);
    }

    public function parseResponse(string $responseLine, ?string $responseData): ArrayResponse
    {
        if (preg_match('#^EXPECTED_CRLF$#', $responseLine)) {
            throw new Exception\ClientBadFormatException($responseLine);
        }
        return $this->createResponse(preg_replace('#^(\S+).*$#s', '$1', $responseLine), [
            'line' => $responseLine,
            'data' => $responseData,
        ]);
    }
}
