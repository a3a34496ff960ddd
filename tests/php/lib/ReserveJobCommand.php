<?php
// "reserve-job <id>" (beanstalkd 1.12), which pheanstalk 4 has no method
// for: an application adds it as a command class of its own, like this.

declare(strict_types=1);

namespace Defer\PhpTests;

use Pheanstalk\Command\JobCommand;
use Pheanstalk\Contract\ResponseInterface;
use Pheanstalk\Contract\ResponseParserInterface;
use Pheanstalk\Exception;
use Pheanstalk\Response\ArrayResponse;

final class ReserveJobCommand extends JobCommand implements ResponseParserInterface
{
    public function getCommandLine(): string
    {
        return sprintf('reserve-job %u', $this->jobId);
    }

    public function parseResponse(string $responseLine, ?string $responseData): ArrayResponse
    {
        if ($responseLine === ResponseInterface::RESPONSE_NOT_FOUND) {
            throw new Exception\JobNotFoundException("Job {$this->jobId}: $responseLine");
        }
        if (preg_match('#^RESERVED (\d+) \d+$#', $responseLine, $m)) {
            return $this->createResponse(ResponseInterface::RESPONSE_RESERVED, [
                'id' => (int)$m[1],
                'jobdata' => $responseData,
            ]);
        }
        throw new Exception('Unhandled response: ' . $responseLine);
    }
}
